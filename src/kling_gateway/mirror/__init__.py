"""Result mirroring (off by default, ``KGW_MIRROR_ENABLED``): succeeded tasks' videos are copied
into a media store and served by the gateway under expiring signed URLs, so clients neither depend
on Kling's 30-day retention nor see Kling's URLs (which embed the upstream task id).

``service`` holds the use cases, ``rows`` the task-row compare-and-sets, ``fetch`` the capped
streaming download, ``storage`` the store, ``signing`` the links. The worker is
``worker.mirror.MirrorWorker``; the route is ``http.routes.results``.
"""

from .fetch import AiohttpFetcher, Fetched, Fetcher, HttpxFetcher, MirrorError, download
from .service import Mirror, Outcome, build_mirror, mirror_task, public_videos, sweep
from .signing import UrlSigner, signer_for
from .storage import LocalDirStore, MediaStore, StoredMedia

__all__ = [
    "AiohttpFetcher",
    "Fetched",
    "Fetcher",
    "HttpxFetcher",
    "LocalDirStore",
    "MediaStore",
    "Mirror",
    "MirrorError",
    "Outcome",
    "StoredMedia",
    "UrlSigner",
    "build_mirror",
    "download",
    "mirror_task",
    "public_videos",
    "signer_for",
    "sweep",
]
