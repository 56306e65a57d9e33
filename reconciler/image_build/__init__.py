"""Building the function's image from `image.build`: the content identity of a build
(context.py, with .dockerignore's semantics in dockerignore.py), computed without Docker so
that `plan` never needs it, and the docker CLI that builds and pushes (docker.py)."""
