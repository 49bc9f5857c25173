"""Media types, annotation keys and default figures (pure values, no I/O).

Names match oras-py's ``oras.defaults`` so ported code keeps working.
"""

from __future__ import annotations

import os
from typing import ClassVar

default_tag = "latest"


class registry:  # noqa: N801 - lower-case class name kept from oras-py
    """Docker Hub's names: the index server used as the credential key, and the API host."""

    index_hostname = "index.docker.io"
    index_server = "https://index.docker.io/v1/"
    index_name = "docker.io"
    default_v2_registry: ClassVar[dict[str, str]] = {
        "scheme": "https",
        "host": "registry-1.docker.io",
    }


# Media types
default_blob_dir_media_type = "application/vnd.oci.image.layer.v1.tar+gzip"
default_blob_media_type = "application/vnd.oci.image.layer.v1.tar"
unknown_config_media_type = "application/vnd.unknown.config.v1+json"
default_config_media_type = "application/vnd.oci.image.config.v1+json"
empty_media_type = "application/vnd.oci.empty.v1+json"
default_manifest_media_type = "application/vnd.oci.image.manifest.v1+json"
default_index_media_type = "application/vnd.oci.image.index.v1+json"
docker_manifest_media_type = "application/vnd.docker.distribution.manifest.v2+json"
docker_manifest_list_media_type = "application/vnd.docker.distribution.manifest.list.v2+json"

default_manifest_accepted_media_types = [
    default_manifest_media_type,
    default_index_media_type,
    docker_manifest_media_type,
    docker_manifest_list_media_type,
]
manifest_media_types = frozenset({default_manifest_media_type, docker_manifest_media_type})
index_media_types = frozenset({default_index_media_type, docker_manifest_list_media_type})

# Annotation keys
annotation_title = "org.opencontainers.image.title"
annotation_created = "org.opencontainers.image.created"
annotation_digest = "io.deis.oras.content.digest"
annotation_unpack = "io.deis.oras.content.unpack"
oci_ref_name_annotation = "org.opencontainers.image.ref.name"

# OCI image layout
oci_image_index_file = "index.json"
oci_blobs_dir = "blobs"
oci_layout_file = "oci-layout"
oci_layout_version_pin = "1.0.0"
oci_index_schema_version = 2

# Well-known digests
blank_hash = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
blank_config_hash = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
empty_config_bytes = b"{}"

# Sizes and limits (bytes unless stated)
default_blocksize = 32768
default_chunksize = 16 * 1024 * 1024
io_chunk_size = 1024 * 1024
max_manifest_size = 4 * 1024 * 1024
max_metadata_size = 4 * 1024 * 1024
# index.json of an OCI layout lists every root (a few hundred bytes each): room for ~100k.
max_layout_index_size = 32 * 1024 * 1024
# Caps on bodies that are not blobs, read whole (aioras._http.responses.read_capped): past its cap a
# body is refused, never held or inflated further.
max_response_size = 16 * 1024 * 1024
"""Any non-blob body without a tighter cap: tag-list and catalog pages, ``GET /v2/``, upload
answers, ``do_request`` without ``stream``. The ceiling of every cap below."""
max_listed_names = 1_000_000
"""Names one listing may hold across all its pages (tags, catalog; referrers of one subject):
each page is capped in bytes, but pages keep coming; a million names is about 110 MiB held."""
max_token_size = 1024 * 1024
"""A token service's answer."""
max_error_body = 64 * 1024
"""An error response (status 400 and up): what is kept of it, for its OCI error codes."""
max_json_depth = 64
"""Nesting levels of JSON from outside (registries, token services, config files)."""
min_blob_rate = 1024
"""Bytes per second a blob body must average over each window of the read timeout."""

# Unpacking archive layers (per pull, all its archive layers together). Bytes count the
# uncompressed tar stream (content, headers and padding).
unpack_max_bytes = 32 * 1024 * 1024 * 1024
unpack_max_members = 100_000
# Past the allowance, an archive may expand to at most this many times its compressed size:
# a 2 MiB archive stops at 200 MiB, before a decompression bomb fills the disk.
unpack_max_ratio = 100.0
unpack_ratio_allowance = 64 * 1024 * 1024

# Graph walks (copy's successors and referrers, discover's referrers tree): past either limit a
# walk raises GraphLimitExceeded instead of following a registry that invents nodes forever.
max_graph_depth = 16
"""Levels below the root a walk may go. Real graphs are shallow: index -> manifest -> layer is
two, a signature of an SBOM of a platform manifest five; 16 leaves room for nested indexes and
long referrer chains, and keeps a rendered tree far from Python's recursion limit."""
max_graph_nodes = 10_000
"""Distinct manifests and blobs one walk may reach (each costs a request or more). A 10-platform
image of 50 layers each, with a few referrers per manifest, is under 1,000."""

# Concurrency. Chosen on the WAN bench (registries 20 ms away each way, behind
# benchmarks' delay proxy; docs/performance.md has the tables), not on loopback, where the
# registry's CPU hides what a round trip costs.
# Layers at once per push and per pull, as the reference clients (oras-go: push 5, pull 3):
# the WAN workloads' artifacts hold 2-3 blobs, so these never held them back; an artifact of
# many layers is bounded by max_transfers across everything the registry object does.
default_push_concurrency = 5
default_pull_concurrency = 3
default_copy_concurrency = 3
# Blob transfers in flight per registry object, across all calls. 10 (the loopback choice)
# held 50 pulls started at once to 10 blobs per round trip: at 100 ms each way they took
# 3.1 s, 2.3 s with 32. The adaptive window of each host (aioras._http.ratelimit) still
# cuts in when a registry shows strain.
default_max_transfers = 32
# Artifacts copied at once by mirror(). A first mirror of 200 small artifacts at 20 ms each
# way: 19.4 s with 4, 10.3 s with 16 (32: no faster; the client's CPU is then the limit).
default_mirror_concurrency = 16
# Worker threads for a download's file work (writing and hashing batches, renaming, placing
# pulled files), per event loop; anyio's own pool allows 40. Python code in those threads
# takes the GIL from the event loop, and each extra thread adds switches: pulling 50
# artifacts at once at 20 ms each way on 2 cores, 40 threads made ~10,000 context switches
# and took 0.58 s (median of 8); 2 threads about 3,500 and 0.50 s. Hashing releases the GIL,
# so a thread per core (2 to 8) keeps large downloads hashing as fast as the disk takes them.
file_threads = max(2, min(8, os.cpu_count() or 1))
# Blobs above the threshold download as this many parallel ranges (where Range is honoured):
# storage serving each connection at a fixed speed then gives 8 times that, within
# max_transfers.
default_download_ranges = 8
default_range_threshold = 64 * 1024 * 1024
# Files of this size or more start uploading at once, hashed in a worker thread beside the
# upload (the closing PUT waits for the digest) instead of before: hashing 1 GiB takes
# ~0.6 s, which otherwise delays the upload's first byte. The existence check follows the
# hash; a blob found there cancels the upload. Below it, hash first: a small blob the
# registry holds costs no bytes.
default_overlap_threshold = 64 * 1024 * 1024
