"""Real-browser acceptance tests (a package, so their lab and browser are package-scoped)."""
