"""The leaderboard: manifests, validated submission bundles, safe host-side scoring of untrusted
bundles, the SQLite store and the static site.

Modules (each one job): ``manifest`` (ids, sizes, fingerprint of a split), ``submission``
(validate predictions, build a bundle), ``bundle`` (the bundle format; opening untrusted ones),
``safety`` (archive and JSON defences), ``push`` (Hub pull request), ``store`` (SQLite),
``host`` (score bundles), ``site`` (static page). Nothing heavy is imported here.
"""
