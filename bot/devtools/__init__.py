"""Development helpers that ship with the package: the in-process SFTP server and the demo.

Nothing here runs in production; it is importable from the package (not from tests/) so that
`python -m bot demo` works from an installed copy.
"""
