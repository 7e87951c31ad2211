"""The operator's console (``flagops ui``): a local web app over the clone.

Starlette serves server-rendered pages and a small JSON API; every write goes through the same
library calls as the command line (:mod:`flagops.edit`), every preview through the same impact
computation as ``flagops plan`` (:mod:`flagops.impact`), and a proposal ends as a pushed branch
with its pull-request link (:mod:`flagops.console.propose`). Import :mod:`flagops.console.app`
for the application; this package itself imports nothing heavy.
"""
