"""The neutral floor of ``aries_lit``: what every layer above may use, and which imports none of them.

Atomic file writes (``io``), disk-space checks (``disk``), folder locks (``locks``), the error types
and their one-line messages (``errors``, ``parse_errors``), the part registries (``registry``) and
the parsed part (``part_spec``), YAML and run-config overlays (``configs``), console output
(``console``), chat roles and templates (``chat``), the six training views' names
(``view_names``), the paper's template text (``paper_text``), model paths (``model_paths``),
provenance records (``provenance``), checkpoint files (``checkpoints``) and process-group helpers
(``distributed``). The layers above are listed in CONTRIBUTING.md, "Package layout".
"""
