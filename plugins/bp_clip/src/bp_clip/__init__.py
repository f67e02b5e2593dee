"""bp-clip: OpenCLIP models for bpcore.

This plugin is a skeleton: it registers no models yet. Installing it adds the ``clip`` entry
point to the ``bpcore`` group (see :mod:`bp_clip.plugin`), which bpcore loads and which
declares nothing for now.
"""
