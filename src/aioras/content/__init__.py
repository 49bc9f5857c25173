"""Content stores and the artifact graph: the protocols, a memory store, OCI layouts, the graph."""
