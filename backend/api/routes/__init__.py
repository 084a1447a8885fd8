"""One APIRouter per resource; backend/main.py mounts them under /api/v1."""
