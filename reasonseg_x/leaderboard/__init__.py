"""The leaderboard: manifests, validated submission bundles, safe host-side scoring of untrusted
bundles, the SQLite store and the static site.

Modules (each one job): ``manifest`` (ids, sizes, fingerprint of a split), ``submission``
(validate predictions, build a bundle), ``runmeta`` (model and test-time-scaling settings from an
eval run's ``run.json``), ``bundle`` (the bundle format; opening untrusted ones), ``safety``
(archive and JSON defences), ``push`` (Hub pull request), ``store`` (SQLite), ``host`` (score
bundles), ``site`` (static page), ``outputs`` (output paths checked before writing). Nothing
heavy is imported here.
"""
