"""bp-effnet: EfficientNet models from ``timm`` for bpcore.

This plugin is a skeleton: it registers no models yet. Installing it adds the ``effnet`` entry
point to the ``bpcore`` group (see :mod:`bp_effnet.plugin`), which bpcore loads and which
declares nothing for now.
"""
