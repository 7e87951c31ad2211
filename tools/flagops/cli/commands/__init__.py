"""One module per command, each exposing ``command``; :mod:`flagops.cli.registry` lists them."""
