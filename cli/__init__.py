"""The `nada` command line: `main.py` holds the one table of subcommands, each other module
one command (adapt, sweep, generate, video, invert, weights, models, worker, serve) and
`service_client.py` the HTTP client of commands that drive a running service.

The top floor beside `backend/` and `worker/`: it may import every package, and none imports
it. Commands import torch and the engine lazily, inside the function that runs them.
"""
