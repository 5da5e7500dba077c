"""Benchmarks of the tracker's fan-out, side by side with two references.

``python -m bench`` runs everything and writes ``bench/results/`` (results.md,
results.json, PNG charts); ``python -m bench --smoke`` is the seconds-long CI
variant. See docs/performance.md for how to read the figures.

Modules: ``servers`` starts the servers (tracker and the two references,
``ref_ceiling`` and ``ref_typical``; with ``--baseline REF`` also the tracker of commit
REF, whose source tree ``baseline`` extracts) pinned to one core; ``loadgen`` is a load
generator process holding many raw WebSocket clients; ``workloads`` drives the
generators through each workload; ``report`` writes the table and charts.
"""
