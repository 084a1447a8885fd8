"""The adaptation engine (StyleGAN-NADA) and the Celery shell that runs it on GPU workers.

Importing this package imports nothing heavy: `worker.engine` pulls in torch and open_clip,
`worker.tasks` pulls in Celery. Callers import the submodule they need.
"""
