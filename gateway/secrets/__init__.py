"""Secrets at rest: secret variable values sealed with AES-GCM under a per-workspace key, the
workspace keys themselves wrapped by the master key.

    master key (setting, file, or a file beside the SQLite database)
      └── wraps  workspace_key.key         one per workspace, kind 'cloud'
            └── seals  variable.value      where is_secret; workspace and path bound to it

`cipher` holds the primitive, `master_key` finds the master key, `workspace_keys` reads and
writes the wrapped keys, `keeper` seals and opens values inside a transaction, `upgrade`
seals values written in clear by older versions, `rotation` replaces keys.
"""
