"""A user's own photo in a generator's domain: face alignment, e4e inversion, W+ refinement.

`weights.py` (the auxiliary model files and their cache) and `photos.py` (safe decoding of
uploaded photos) are torch-free; the rest needs torch and the ml extras.
"""
