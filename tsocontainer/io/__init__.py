"""File input and output: segments (rateints/calints) and state files, as plain data.

Nothing here builds a container: :func:`tsocontainer.group.read_segments` and
:meth:`tsocontainer.TSOGroup.read` do, from what these readers return.
"""
