"""Segments: a safe rule language (CEL), behavioural triggers, memberships and personalisation.

Modules: fields (catalogue of rule fields and types), config (+ default_segments.yaml: load and validate
the segments file), expressions (CEL checking/evaluation), builtins, triggers, activity (per-customer
aggregates, real-time state), rules (compile + evaluate), membership (diff, caps, hysteresis, guardrails),
personalisation (merge fields / properties). Nothing here imports pandas, numpy or scikit-learn.
"""
