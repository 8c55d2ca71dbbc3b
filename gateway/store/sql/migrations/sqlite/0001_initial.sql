-- The gateway's tables on SQLite: the same names and columns as on PostgreSQL. Declared types
-- (TIMESTAMPTZ, JSONB, UUID, BOOLEAN, *_ARRAY) select the store's value converters; enum
-- columns are TEXT holding the same values.

CREATE TABLE workspace (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    owner TEXT NOT NULL,
    deleted BOOLEAN NOT NULL DEFAULT false,
    premium BOOLEAN NOT NULL DEFAULT false,
    parent_workspace_id TEXT REFERENCES workspace (id)
);

CREATE TABLE workspace_key (
    workspace_id TEXT NOT NULL REFERENCES workspace (id),
    kind TEXT NOT NULL DEFAULT 'cloud',
    key TEXT NOT NULL,
    PRIMARY KEY (workspace_id, kind)
);

CREATE TABLE workspace_settings (
    workspace_id TEXT PRIMARY KEY REFERENCES workspace (id),
    webhook TEXT,
    error_handler JSONB,
    success_handler JSONB,
    mute_critical_alerts BOOLEAN
);

CREATE TABLE usr (
    workspace_id TEXT NOT NULL REFERENCES workspace (id),
    username TEXT NOT NULL,
    email TEXT NOT NULL,
    is_admin BOOLEAN NOT NULL DEFAULT false,
    created_at TIMESTAMPTZ NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')),
    operator BOOLEAN NOT NULL DEFAULT false,
    disabled BOOLEAN NOT NULL DEFAULT false,
    role TEXT,
    added_via JSONB,
    PRIMARY KEY (workspace_id, username)
);
CREATE UNIQUE INDEX usr_workspace_email ON usr (workspace_id, email);

CREATE TABLE token (
    token TEXT PRIMARY KEY,
    label TEXT,
    expiration TIMESTAMPTZ,
    workspace_id TEXT REFERENCES workspace (id),
    owner TEXT,
    email TEXT,
    super_admin BOOLEAN NOT NULL DEFAULT false,
    created_at TIMESTAMPTZ NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')),
    last_used_at TIMESTAMPTZ NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')),
    scopes TEXT_ARRAY,
    job UUID
);

CREATE TABLE resource_type (
    workspace_id TEXT NOT NULL REFERENCES workspace (id),
    name TEXT NOT NULL,
    schema JSONB,
    description TEXT,
    edited_at TIMESTAMPTZ,
    created_by TEXT,
    format_extension TEXT,
    PRIMARY KEY (workspace_id, name)
);

CREATE TABLE resource (
    workspace_id TEXT NOT NULL REFERENCES workspace (id),
    path TEXT NOT NULL,
    value JSONB,
    description TEXT,
    resource_type TEXT NOT NULL,
    extra_perms JSONB NOT NULL DEFAULT '{}',
    edited_at TIMESTAMPTZ,
    created_by TEXT,
    PRIMARY KEY (workspace_id, path)
);

CREATE TABLE variable (
    workspace_id TEXT NOT NULL REFERENCES workspace (id),
    path TEXT NOT NULL,
    value TEXT NOT NULL,
    is_secret BOOLEAN NOT NULL DEFAULT false,
    description TEXT NOT NULL DEFAULT '',
    extra_perms JSONB NOT NULL DEFAULT '{}',
    account INTEGER,
    is_oauth BOOLEAN NOT NULL DEFAULT false,
    expires_at TIMESTAMPTZ,
    PRIMARY KEY (workspace_id, path)
);

CREATE TABLE script (
    workspace_id TEXT NOT NULL REFERENCES workspace (id),
    hash INTEGER NOT NULL,
    path TEXT NOT NULL,
    parent_hashes JSONB_ARRAY,
    summary TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    content TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')),
    archived BOOLEAN NOT NULL DEFAULT false,
    schema JSONB,
    deleted BOOLEAN NOT NULL DEFAULT false,
    is_template BOOLEAN DEFAULT false,
    extra_perms JSONB NOT NULL DEFAULT '{}',
    lock TEXT,
    lock_error_logs TEXT,
    language TEXT NOT NULL DEFAULT 'python3',
    kind TEXT NOT NULL DEFAULT 'script',
    tag TEXT,
    draft_only BOOLEAN,
    envs TEXT_ARRAY,
    concurrent_limit INTEGER,
    concurrency_time_window_s INTEGER,
    cache_ttl INTEGER,
    dedicated_worker BOOLEAN,
    ws_error_handler_muted BOOLEAN NOT NULL DEFAULT false,
    priority INTEGER,
    timeout INTEGER,
    delete_after_use BOOLEAN,
    restart_unless_cancelled BOOLEAN,
    concurrency_key TEXT,
    visible_to_runner_only BOOLEAN,
    no_main_func BOOLEAN,
    codebase TEXT,
    has_preprocessor BOOLEAN,
    on_behalf_of_email TEXT,
    schema_validation BOOLEAN NOT NULL DEFAULT false,
    PRIMARY KEY (workspace_id, hash)
);
CREATE INDEX script_path_created ON script (workspace_id, path, created_at DESC);

CREATE TABLE flow (
    workspace_id TEXT NOT NULL REFERENCES workspace (id),
    path TEXT NOT NULL,
    summary TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    value JSONB NOT NULL,
    edited_by TEXT NOT NULL,
    edited_at TIMESTAMPTZ NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')),
    archived BOOLEAN NOT NULL DEFAULT false,
    schema JSONB,
    extra_perms JSONB NOT NULL DEFAULT '{}',
    dependency_job UUID,
    draft_only BOOLEAN,
    tag TEXT,
    ws_error_handler_muted BOOLEAN NOT NULL DEFAULT false,
    dedicated_worker BOOLEAN,
    timeout INTEGER,
    visible_to_runner_only BOOLEAN,
    concurrency_key TEXT,
    versions JSONB_ARRAY NOT NULL DEFAULT '[]',
    on_behalf_of_email TEXT,
    lock_error_logs TEXT,
    PRIMARY KEY (workspace_id, path)
);

CREATE TABLE flow_version (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id TEXT NOT NULL,
    path TEXT NOT NULL,
    value JSONB NOT NULL,
    schema JSONB,
    created_by TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')),
    FOREIGN KEY (workspace_id, path) REFERENCES flow (workspace_id, path)
        ON DELETE CASCADE ON UPDATE CASCADE
);

CREATE TABLE http_trigger (
    path TEXT NOT NULL,
    route_path TEXT NOT NULL,
    route_path_key TEXT NOT NULL,
    script_path TEXT NOT NULL,
    is_flow BOOLEAN NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspace (id),
    edited_by TEXT NOT NULL,
    email TEXT NOT NULL,
    permissioned_as TEXT,
    edited_at TIMESTAMPTZ NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')),
    extra_perms JSONB NOT NULL DEFAULT '{}',
    authentication_method TEXT NOT NULL DEFAULT 'none',
    http_method TEXT NOT NULL,
    static_asset_config JSONB,
    is_static_website BOOLEAN NOT NULL DEFAULT false,
    workspaced_route BOOLEAN NOT NULL DEFAULT false,
    wrap_body BOOLEAN NOT NULL DEFAULT false,
    raw_string BOOLEAN NOT NULL DEFAULT false,
    authentication_resource_path TEXT,
    summary TEXT,
    description TEXT,
    error_handler_path TEXT,
    error_handler_args JSONB,
    retry JSONB,
    request_type TEXT NOT NULL DEFAULT 'sync',
    mode TEXT NOT NULL DEFAULT 'enabled',
    labels TEXT_ARRAY,
    PRIMARY KEY (workspace_id, path)
);

CREATE TABLE websocket_trigger (
    path TEXT NOT NULL,
    url TEXT NOT NULL,
    script_path TEXT NOT NULL,
    is_flow BOOLEAN NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspace (id),
    edited_by TEXT NOT NULL,
    email TEXT NOT NULL,
    permissioned_as TEXT,
    edited_at TIMESTAMPTZ NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')),
    extra_perms JSONB NOT NULL DEFAULT '{}',
    server_id TEXT,
    last_server_ping TIMESTAMPTZ,
    error TEXT,
    filters JSONB_ARRAY NOT NULL DEFAULT '[]',
    filter_logic TEXT NOT NULL DEFAULT 'and',
    initial_messages JSONB_ARRAY DEFAULT '[]',
    url_runnable_args JSONB DEFAULT '{}',
    can_return_message BOOLEAN NOT NULL DEFAULT false,
    can_return_error_result BOOLEAN NOT NULL DEFAULT false,
    heartbeat JSONB,
    error_handler_path TEXT,
    error_handler_args JSONB,
    retry JSONB,
    mode TEXT NOT NULL DEFAULT 'enabled',
    labels TEXT_ARRAY,
    PRIMARY KEY (workspace_id, path)
);

CREATE TABLE kafka_trigger (
    path TEXT NOT NULL,
    kafka_resource_path TEXT NOT NULL,
    topics TEXT_ARRAY NOT NULL,
    group_id TEXT NOT NULL,
    script_path TEXT NOT NULL,
    is_flow BOOLEAN NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspace (id),
    edited_by TEXT NOT NULL,
    email TEXT NOT NULL,
    permissioned_as TEXT,
    edited_at TIMESTAMPTZ NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')),
    extra_perms JSONB NOT NULL DEFAULT '{}',
    server_id TEXT,
    last_server_ping TIMESTAMPTZ,
    error TEXT,
    error_handler_path TEXT,
    error_handler_args JSONB,
    retry JSONB,
    mode TEXT NOT NULL DEFAULT 'enabled',
    filters JSONB_ARRAY NOT NULL DEFAULT '[]',
    filter_logic TEXT NOT NULL DEFAULT 'and',
    auto_offset_reset TEXT NOT NULL DEFAULT 'latest',
    reset_offset BOOLEAN NOT NULL DEFAULT false,
    auto_commit BOOLEAN NOT NULL DEFAULT true,
    labels TEXT_ARRAY,
    PRIMARY KEY (workspace_id, path)
);

CREATE TABLE nats_trigger (
    path TEXT NOT NULL,
    nats_resource_path TEXT NOT NULL,
    subjects TEXT_ARRAY NOT NULL,
    stream_name TEXT,
    consumer_name TEXT,
    use_jetstream BOOLEAN NOT NULL,
    script_path TEXT NOT NULL,
    is_flow BOOLEAN NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspace (id),
    edited_by TEXT NOT NULL,
    email TEXT NOT NULL,
    permissioned_as TEXT,
    edited_at TIMESTAMPTZ NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')),
    extra_perms JSONB NOT NULL DEFAULT '{}',
    server_id TEXT,
    last_server_ping TIMESTAMPTZ,
    error TEXT,
    error_handler_path TEXT,
    error_handler_args JSONB,
    retry JSONB,
    mode TEXT NOT NULL DEFAULT 'enabled',
    labels TEXT_ARRAY,
    PRIMARY KEY (workspace_id, path)
);

CREATE TABLE sqs_trigger (
    path TEXT NOT NULL,
    queue_url TEXT NOT NULL,
    aws_resource_path TEXT NOT NULL,
    message_attributes TEXT_ARRAY,
    script_path TEXT NOT NULL,
    is_flow BOOLEAN NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspace (id),
    edited_by TEXT NOT NULL,
    email TEXT NOT NULL,
    permissioned_as TEXT,
    edited_at TIMESTAMPTZ NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')),
    extra_perms JSONB NOT NULL DEFAULT '{}',
    error TEXT,
    server_id TEXT,
    last_server_ping TIMESTAMPTZ,
    aws_auth_resource_type TEXT NOT NULL DEFAULT 'credentials',
    error_handler_path TEXT,
    error_handler_args JSONB,
    retry JSONB,
    mode TEXT NOT NULL DEFAULT 'enabled',
    labels TEXT_ARRAY,
    PRIMARY KEY (workspace_id, path)
);

CREATE TABLE gcp_trigger (
    gcp_resource_path TEXT NOT NULL,
    topic_id TEXT NOT NULL,
    subscription_id TEXT NOT NULL,
    delivery_type TEXT NOT NULL,
    delivery_config JSONB,
    path TEXT NOT NULL,
    script_path TEXT NOT NULL,
    is_flow BOOLEAN NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspace (id),
    edited_by TEXT NOT NULL,
    email TEXT NOT NULL,
    permissioned_as TEXT,
    edited_at TIMESTAMPTZ NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')),
    extra_perms JSONB NOT NULL DEFAULT '{}',
    server_id TEXT,
    last_server_ping TIMESTAMPTZ,
    error TEXT,
    subscription_mode TEXT NOT NULL DEFAULT 'create_update',
    error_handler_path TEXT,
    error_handler_args JSONB,
    retry JSONB,
    auto_acknowledge_msg BOOLEAN DEFAULT true,
    ack_deadline INTEGER,
    mode TEXT NOT NULL DEFAULT 'enabled',
    labels TEXT_ARRAY,
    PRIMARY KEY (workspace_id, path)
);

CREATE TABLE mqtt_trigger (
    mqtt_resource_path TEXT NOT NULL,
    subscribe_topics JSONB_ARRAY NOT NULL,
    client_version TEXT DEFAULT 'v5',
    v5_config JSONB,
    v3_config JSONB,
    client_id TEXT,
    path TEXT NOT NULL,
    script_path TEXT NOT NULL,
    is_flow BOOLEAN NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspace (id),
    edited_by TEXT NOT NULL,
    email TEXT NOT NULL,
    permissioned_as TEXT,
    edited_at TIMESTAMPTZ NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')),
    extra_perms JSONB NOT NULL DEFAULT '{}',
    server_id TEXT,
    last_server_ping TIMESTAMPTZ,
    error TEXT,
    error_handler_path TEXT,
    error_handler_args JSONB,
    retry JSONB,
    mode TEXT NOT NULL DEFAULT 'enabled',
    labels TEXT_ARRAY,
    PRIMARY KEY (workspace_id, path)
);

CREATE TABLE postgres_trigger (
    path TEXT NOT NULL,
    script_path TEXT NOT NULL,
    is_flow BOOLEAN NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspace (id),
    edited_by TEXT NOT NULL,
    email TEXT NOT NULL,
    permissioned_as TEXT,
    edited_at TIMESTAMPTZ NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')),
    extra_perms JSONB DEFAULT '{}',
    postgres_resource_path TEXT NOT NULL,
    error TEXT,
    server_id TEXT,
    last_server_ping TIMESTAMPTZ,
    replication_slot_name TEXT NOT NULL,
    publication_name TEXT NOT NULL,
    error_handler_path TEXT,
    error_handler_args JSONB,
    retry JSONB,
    mode TEXT NOT NULL DEFAULT 'enabled',
    labels TEXT_ARRAY,
    PRIMARY KEY (workspace_id, path)
);

CREATE TABLE email_trigger (
    path TEXT NOT NULL,
    local_part TEXT NOT NULL,
    workspaced_local_part BOOLEAN NOT NULL DEFAULT false,
    script_path TEXT NOT NULL,
    is_flow BOOLEAN NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspace (id),
    edited_by TEXT NOT NULL,
    email TEXT NOT NULL,
    permissioned_as TEXT,
    edited_at TIMESTAMPTZ NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')),
    extra_perms JSONB NOT NULL DEFAULT '{}',
    error_handler_path TEXT,
    error_handler_args JSONB,
    retry JSONB,
    mode TEXT NOT NULL DEFAULT 'enabled',
    labels TEXT_ARRAY,
    PRIMARY KEY (workspace_id, path)
);

CREATE TABLE capture_config (
    workspace_id TEXT NOT NULL REFERENCES workspace (id),
    path TEXT NOT NULL,
    is_flow BOOLEAN NOT NULL,
    trigger_kind TEXT NOT NULL,
    trigger_config JSONB,
    owner TEXT NOT NULL,
    email TEXT NOT NULL,
    server_id TEXT,
    last_client_ping TIMESTAMPTZ,
    last_server_ping TIMESTAMPTZ,
    error TEXT,
    PRIMARY KEY (workspace_id, path, is_flow, trigger_kind)
);

CREATE TABLE capture (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id TEXT NOT NULL REFERENCES workspace (id),
    path TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')),
    created_by TEXT NOT NULL,
    main_args JSONB NOT NULL DEFAULT 'null',
    is_flow BOOLEAN NOT NULL,
    trigger_kind TEXT NOT NULL,
    preprocessor_args JSONB
);
CREATE INDEX capture_runnable ON capture (workspace_id, path, is_flow, created_at DESC);

CREATE TABLE schedule (
    workspace_id TEXT NOT NULL REFERENCES workspace (id),
    path TEXT NOT NULL,
    edited_by TEXT NOT NULL,
    edited_at TIMESTAMPTZ NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')),
    schedule TEXT NOT NULL,
    enabled BOOLEAN NOT NULL DEFAULT true,
    script_path TEXT NOT NULL,
    args JSONB,
    extra_perms JSONB NOT NULL DEFAULT '{}',
    is_flow BOOLEAN NOT NULL DEFAULT false,
    email TEXT NOT NULL,
    error TEXT,
    timezone TEXT NOT NULL DEFAULT 'UTC',
    on_failure TEXT,
    on_recovery TEXT,
    on_failure_times INTEGER,
    on_failure_exact BOOLEAN,
    on_failure_extra_args JSONB,
    on_recovery_times INTEGER,
    on_recovery_extra_args JSONB,
    ws_error_handler_muted BOOLEAN NOT NULL DEFAULT false,
    retry JSONB,
    summary TEXT,
    no_flow_overlap BOOLEAN NOT NULL DEFAULT false,
    tag TEXT,
    paused_until TIMESTAMPTZ,
    on_success TEXT,
    on_success_extra_args JSONB,
    cron_version TEXT,
    description TEXT,
    PRIMARY KEY (workspace_id, path)
);

CREATE TABLE v2_job (
    id UUID PRIMARY KEY,
    raw_code TEXT,
    raw_lock TEXT,
    raw_flow JSONB,
    tag TEXT NOT NULL DEFAULT 'other',
    workspace_id TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')),
    created_by TEXT NOT NULL,
    permissioned_as TEXT NOT NULL,
    permissioned_as_email TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'script',
    runnable_id INTEGER,
    runnable_path TEXT,
    parent_job UUID,
    root_job UUID,
    script_lang TEXT DEFAULT 'python3',
    script_entrypoint_override TEXT,
    flow_step INTEGER,
    flow_step_id TEXT,
    flow_innermost_root_job UUID,
    trigger TEXT,
    trigger_kind TEXT,
    same_worker BOOLEAN NOT NULL DEFAULT false,
    visible_to_owner BOOLEAN NOT NULL DEFAULT true,
    concurrent_limit INTEGER,
    concurrency_time_window_s INTEGER,
    cache_ttl INTEGER,
    timeout INTEGER,
    priority INTEGER,
    preprocessed BOOLEAN,
    args JSONB,
    labels TEXT_ARRAY,
    pre_run_error TEXT
);
CREATE INDEX v2_job_workspace_created ON v2_job (workspace_id, created_at DESC);
CREATE INDEX v2_job_trigger ON v2_job (workspace_id, trigger_kind, trigger);
CREATE INDEX v2_job_parent ON v2_job (parent_job) WHERE parent_job IS NOT NULL;

CREATE TABLE v2_job_queue (
    id UUID PRIMARY KEY REFERENCES v2_job (id) ON DELETE CASCADE,
    workspace_id TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')),
    started_at TIMESTAMPTZ,
    scheduled_for TIMESTAMPTZ NOT NULL,
    running BOOLEAN NOT NULL DEFAULT false,
    canceled_by TEXT,
    canceled_reason TEXT,
    suspend INTEGER NOT NULL DEFAULT 0,
    suspend_until TIMESTAMPTZ,
    tag TEXT NOT NULL DEFAULT 'other',
    priority INTEGER,
    worker TEXT,
    extras JSONB,
    cache_ignore_s3_path BOOLEAN,
    runnable_settings_handle INTEGER
);
CREATE INDEX v2_job_queue_due ON v2_job_queue (priority DESC, scheduled_for, created_at)
    WHERE running = false;

CREATE TABLE v2_job_runtime (
    id UUID PRIMARY KEY REFERENCES v2_job_queue (id) ON DELETE CASCADE,
    ping TIMESTAMPTZ DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')),
    memory_peak INTEGER
);

CREATE TABLE v2_job_status (
    id UUID PRIMARY KEY REFERENCES v2_job_queue (id) ON DELETE CASCADE,
    flow_status JSONB,
    flow_leaf_jobs JSONB,
    workflow_as_code_status JSONB
);

CREATE TABLE v2_job_completed (
    id UUID PRIMARY KEY REFERENCES v2_job (id) ON DELETE CASCADE,
    workspace_id TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    result JSONB,
    deleted BOOLEAN NOT NULL DEFAULT false,
    canceled_by TEXT,
    canceled_reason TEXT,
    flow_status JSONB,
    started_at TIMESTAMPTZ,
    memory_peak INTEGER,
    status TEXT NOT NULL,
    completed_at TIMESTAMPTZ NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')),
    worker TEXT,
    workflow_as_code_status JSONB,
    result_columns TEXT_ARRAY,
    retries UUID_ARRAY,
    extras JSONB
);
CREATE INDEX v2_job_completed_workspace ON v2_job_completed (workspace_id, completed_at DESC);

CREATE TABLE job_logs (
    job_id UUID PRIMARY KEY,
    workspace_id TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')),
    logs TEXT,
    log_offset INTEGER NOT NULL DEFAULT 0,
    log_file_index TEXT_ARRAY
);

CREATE TABLE audit (
    workspace_id TEXT NOT NULL,
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    timestamp TIMESTAMPTZ NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')),
    username TEXT NOT NULL,
    operation TEXT NOT NULL,
    action_kind TEXT NOT NULL,
    resource TEXT,
    parameters JSONB,
    email TEXT,
    span TEXT
);
CREATE INDEX audit_workspace_time ON audit (workspace_id, timestamp DESC);

CREATE TABLE alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_type TEXT NOT NULL,
    message TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')),
    acknowledged BOOLEAN,
    workspace_id TEXT,
    acknowledged_workspace BOOLEAN,
    resource TEXT
);

CREATE TABLE zombie_job_counter (
    job_id UUID PRIMARY KEY REFERENCES v2_job (id) ON DELETE CASCADE,
    counter INTEGER NOT NULL DEFAULT 0
);

-- What Windmill lacks: a source event seen before maps to the job it first became.
CREATE TABLE event_dedup (
    workspace_id TEXT NOT NULL,
    dedup_key TEXT NOT NULL,
    job_id UUID NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')),
    PRIMARY KEY (workspace_id, dedup_key)
);
CREATE INDEX event_dedup_created ON event_dedup (created_at);

-- Events that could not become jobs, kept with their raw bytes and the reason.
CREATE TABLE event_quarantine (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id TEXT NOT NULL,
    trigger_kind TEXT NOT NULL,
    trigger_path TEXT NOT NULL,
    dedup_key TEXT,
    raw BLOB NOT NULL,
    info JSONB,
    error TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')),
    redriven_at TIMESTAMPTZ,
    redriven_job_id UUID
);
CREATE INDEX event_quarantine_trigger ON event_quarantine (workspace_id, trigger_kind, trigger_path);
