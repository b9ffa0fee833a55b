"""The base registry (一标三实 · 四库合一): standard addresses and the actual housing, population and
organisations registered against them, each placed in its cell.

Sits above ``boundaries`` and ``geo`` and below ``incidents``: it imports neither incidents, assign,
hazards, analysis nor web. Modules: ``models`` (tables), ``pii`` (digests, encryption, masking,
identity-number and credit-code checksums), ``addresses`` (normalisation and matching),
``placement`` (records → cells through the lookup index, re-placement), ``files`` (reading CSV /
XLSX), ``imports`` (set-based import), ``service`` (queries, summaries, export, households per
cell), ``cli`` (the ``gridmap registry`` commands) and ``demo`` (the synthetic register).
"""
