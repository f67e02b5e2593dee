"""bp-hf: Hugging Face ``transformers`` models for bpcore.

This plugin is a skeleton: it registers no models yet. Installing it adds the ``hf`` entry
point to the ``bpcore`` group (see :mod:`bp_hf.plugin`), which bpcore loads and which
declares nothing for now.
"""
