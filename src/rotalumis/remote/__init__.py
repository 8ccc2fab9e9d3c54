"""L1 remote: PPX 1.0 — drive simulators in any language, serve rotalumis models to any engine."""
