-- The gateway's tables: Windmill's names, columns and enum values, plus the event dedup keys
-- and the quarantine that Windmill lacks.

CREATE TYPE trigger_mode AS ENUM ('enabled', 'disabled', 'suspended');
CREATE TYPE http_method AS ENUM ('get', 'post', 'put', 'delete', 'patch');
CREATE TYPE request_type AS ENUM ('sync', 'async', 'sync_sse');
CREATE TYPE authentication_method AS ENUM
    ('none', 'windmill', 'api_key', 'basic_http', 'custom_script', 'signature');
CREATE TYPE delivery_mode AS ENUM ('push', 'pull');
CREATE TYPE gcp_subscription_mode AS ENUM ('create_update', 'existing');
CREATE TYPE aws_auth_resource_type AS ENUM ('oidc', 'credentials');
CREATE TYPE mqtt_client_version AS ENUM ('v3', 'v5');
CREATE TYPE action_kind AS ENUM ('create', 'update', 'delete', 'execute');
CREATE TYPE script_lang AS ENUM (
    'python3', 'deno', 'go', 'bash', 'postgresql', 'nativets', 'bun', 'mysql', 'bigquery',
    'snowflake', 'graphql', 'powershell', 'mssql', 'php', 'bunnative', 'rust', 'ansible', 'csharp',
    'oracledb', 'nu', 'java', 'duckdb', 'ruby');
CREATE TYPE script_kind AS ENUM
    ('script', 'trigger', 'failure', 'command', 'approval', 'preprocessor');
CREATE TYPE job_kind AS ENUM (
    'script', 'preview', 'flow', 'dependencies', 'flowpreview', 'script_hub', 'identity',
    'flowdependencies', 'http', 'graphql', 'postgresql', 'noop', 'appdependencies',
    'deploymentcallback', 'singlestepflow', 'flowscript', 'flownode', 'appscript', 'aiagent',
    'unassigned_script', 'unassigned_flow', 'unassigned_singlestepflow');
CREATE TYPE job_status AS ENUM ('success', 'failure', 'canceled', 'skipped');
CREATE TYPE job_trigger_kind AS ENUM (
    'webhook', 'http', 'websocket', 'kafka', 'email', 'nats', 'schedule', 'app', 'ui', 'postgres',
    'sqs', 'gcp', 'mqtt', 'nextcloud');
CREATE TYPE trigger_kind AS ENUM (
    'webhook', 'http', 'websocket', 'kafka', 'email', 'nats', 'postgres', 'sqs', 'mqtt', 'gcp',
    'default_email', 'nextcloud');

CREATE FUNCTION gw_now_plus(seconds double precision) RETURNS timestamptz
    LANGUAGE sql STABLE AS $$ SELECT now() + make_interval(secs => seconds) $$;

CREATE TABLE workspace (
    id varchar(50) PRIMARY KEY,
    name varchar(50) NOT NULL,
    owner varchar(255) NOT NULL,
    deleted boolean NOT NULL DEFAULT false,
    premium boolean NOT NULL DEFAULT false,
    parent_workspace_id varchar(50) REFERENCES workspace (id)
);

CREATE TABLE workspace_key (
    workspace_id varchar(50) NOT NULL REFERENCES workspace (id),
    kind varchar(50) NOT NULL DEFAULT 'cloud',
    key varchar(255) NOT NULL,
    PRIMARY KEY (workspace_id, kind)
);

CREATE TABLE workspace_settings (
    workspace_id varchar(50) PRIMARY KEY REFERENCES workspace (id),
    webhook text,
    error_handler jsonb,
    success_handler jsonb,
    mute_critical_alerts boolean
);

CREATE TABLE usr (
    workspace_id varchar(50) NOT NULL REFERENCES workspace (id),
    username varchar(50) NOT NULL,
    email varchar(255) NOT NULL,
    is_admin boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    operator boolean NOT NULL DEFAULT false,
    disabled boolean NOT NULL DEFAULT false,
    role varchar(50),
    added_via jsonb,
    PRIMARY KEY (workspace_id, username)
);
CREATE UNIQUE INDEX usr_workspace_email ON usr (workspace_id, email);

CREATE TABLE token (
    token varchar(255) PRIMARY KEY,
    label varchar(255),
    expiration timestamptz,
    workspace_id varchar(50) REFERENCES workspace (id),
    owner varchar(55),
    email varchar(255),
    super_admin boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz NOT NULL DEFAULT now(),
    scopes text[],
    job uuid
);

CREATE TABLE resource_type (
    workspace_id varchar(50) NOT NULL REFERENCES workspace (id),
    name varchar(50) NOT NULL,
    schema jsonb,
    description text,
    edited_at timestamptz,
    created_by varchar(50),
    format_extension varchar(20),
    PRIMARY KEY (workspace_id, name)
);

CREATE TABLE resource (
    workspace_id varchar(50) NOT NULL REFERENCES workspace (id),
    path varchar(255) NOT NULL,
    value jsonb,
    description text,
    resource_type varchar(50) NOT NULL,
    extra_perms jsonb NOT NULL DEFAULT '{}',
    edited_at timestamptz,
    created_by varchar(50),
    PRIMARY KEY (workspace_id, path)
);

CREATE TABLE variable (
    workspace_id varchar(50) NOT NULL REFERENCES workspace (id),
    path varchar(255) NOT NULL,
    value varchar(15000) NOT NULL,
    is_secret boolean NOT NULL DEFAULT false,
    description varchar(10000) NOT NULL DEFAULT '',
    extra_perms jsonb NOT NULL DEFAULT '{}',
    account integer,
    is_oauth boolean NOT NULL DEFAULT false,
    expires_at timestamptz,
    PRIMARY KEY (workspace_id, path)
);

CREATE TABLE script (
    workspace_id varchar(50) NOT NULL REFERENCES workspace (id),
    hash bigint NOT NULL,
    path varchar(255) NOT NULL,
    parent_hashes bigint[],
    summary text NOT NULL DEFAULT '',
    description text NOT NULL DEFAULT '',
    content text NOT NULL,
    created_by varchar(50) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    archived boolean NOT NULL DEFAULT false,
    schema jsonb,
    deleted boolean NOT NULL DEFAULT false,
    is_template boolean DEFAULT false,
    extra_perms jsonb NOT NULL DEFAULT '{}',
    lock text,
    lock_error_logs text,
    language script_lang NOT NULL DEFAULT 'python3',
    kind script_kind NOT NULL DEFAULT 'script',
    tag varchar(50),
    draft_only boolean,
    envs varchar(1000)[],
    concurrent_limit integer,
    concurrency_time_window_s integer,
    cache_ttl integer,
    dedicated_worker boolean,
    ws_error_handler_muted boolean NOT NULL DEFAULT false,
    priority smallint,
    timeout integer,
    delete_after_use boolean,
    restart_unless_cancelled boolean,
    concurrency_key varchar(255),
    visible_to_runner_only boolean,
    no_main_func boolean,
    codebase varchar(255),
    has_preprocessor boolean,
    on_behalf_of_email text,
    schema_validation boolean NOT NULL DEFAULT false,
    PRIMARY KEY (workspace_id, hash)
);
CREATE INDEX script_path_created ON script (workspace_id, path, created_at DESC);

CREATE TABLE flow (
    workspace_id varchar(50) NOT NULL REFERENCES workspace (id),
    path varchar(255) NOT NULL,
    summary text NOT NULL DEFAULT '',
    description text NOT NULL DEFAULT '',
    value jsonb NOT NULL,
    edited_by varchar(50) NOT NULL,
    edited_at timestamptz NOT NULL DEFAULT now(),
    archived boolean NOT NULL DEFAULT false,
    schema jsonb,
    extra_perms jsonb NOT NULL DEFAULT '{}',
    dependency_job uuid,
    draft_only boolean,
    tag varchar(50),
    ws_error_handler_muted boolean NOT NULL DEFAULT false,
    dedicated_worker boolean,
    timeout integer,
    visible_to_runner_only boolean,
    concurrency_key varchar(255),
    versions bigint[] NOT NULL DEFAULT '{}',
    on_behalf_of_email text,
    lock_error_logs text,
    PRIMARY KEY (workspace_id, path)
);

CREATE TABLE flow_version (
    id bigserial PRIMARY KEY,
    workspace_id varchar(50) NOT NULL,
    path varchar(255) NOT NULL,
    value jsonb NOT NULL,
    schema jsonb,
    created_by varchar(50) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (workspace_id, path) REFERENCES flow (workspace_id, path)
        ON DELETE CASCADE ON UPDATE CASCADE
);

CREATE TABLE http_trigger (
    path varchar(255) NOT NULL,
    route_path varchar(255) NOT NULL,
    route_path_key varchar(255) NOT NULL,
    script_path varchar(255) NOT NULL,
    is_flow boolean NOT NULL,
    workspace_id varchar(50) NOT NULL REFERENCES workspace (id),
    edited_by varchar(50) NOT NULL,
    email varchar(255) NOT NULL,
    permissioned_as varchar(255),
    edited_at timestamptz NOT NULL DEFAULT now(),
    extra_perms jsonb NOT NULL DEFAULT '{}',
    authentication_method authentication_method NOT NULL DEFAULT 'none',
    http_method http_method NOT NULL,
    static_asset_config jsonb,
    is_static_website boolean NOT NULL DEFAULT false,
    workspaced_route boolean NOT NULL DEFAULT false,
    wrap_body boolean NOT NULL DEFAULT false,
    raw_string boolean NOT NULL DEFAULT false,
    authentication_resource_path varchar(255),
    summary varchar(512),
    description text,
    error_handler_path varchar(255),
    error_handler_args jsonb,
    retry jsonb,
    request_type request_type NOT NULL DEFAULT 'sync',
    mode trigger_mode NOT NULL DEFAULT 'enabled',
    labels text[],
    PRIMARY KEY (workspace_id, path)
);

CREATE TABLE websocket_trigger (
    path varchar(255) NOT NULL,
    url varchar(1000) NOT NULL,
    script_path varchar(255) NOT NULL,
    is_flow boolean NOT NULL,
    workspace_id varchar(50) NOT NULL REFERENCES workspace (id),
    edited_by varchar(50) NOT NULL,
    email varchar(255) NOT NULL,
    permissioned_as varchar(255),
    edited_at timestamptz NOT NULL DEFAULT now(),
    extra_perms jsonb NOT NULL DEFAULT '{}',
    server_id varchar(50),
    last_server_ping timestamptz,
    error text,
    filters jsonb[] NOT NULL DEFAULT '{}',
    filter_logic varchar(3) NOT NULL DEFAULT 'and',
    initial_messages jsonb[] DEFAULT '{}',
    url_runnable_args jsonb DEFAULT '{}',
    can_return_message boolean NOT NULL DEFAULT false,
    can_return_error_result boolean NOT NULL DEFAULT false,
    heartbeat jsonb,
    error_handler_path varchar(255),
    error_handler_args jsonb,
    retry jsonb,
    mode trigger_mode NOT NULL DEFAULT 'enabled',
    labels text[],
    PRIMARY KEY (workspace_id, path)
);

CREATE TABLE kafka_trigger (
    path varchar(255) NOT NULL,
    kafka_resource_path varchar(255) NOT NULL,
    topics varchar(255)[] NOT NULL,
    group_id varchar(255) NOT NULL,
    script_path varchar(255) NOT NULL,
    is_flow boolean NOT NULL,
    workspace_id varchar(50) NOT NULL REFERENCES workspace (id),
    edited_by varchar(50) NOT NULL,
    email varchar(255) NOT NULL,
    permissioned_as varchar(255),
    edited_at timestamptz NOT NULL DEFAULT now(),
    extra_perms jsonb NOT NULL DEFAULT '{}',
    server_id varchar(50),
    last_server_ping timestamptz,
    error text,
    error_handler_path varchar(255),
    error_handler_args jsonb,
    retry jsonb,
    mode trigger_mode NOT NULL DEFAULT 'enabled',
    filters jsonb[] NOT NULL DEFAULT '{}',
    filter_logic varchar(3) NOT NULL DEFAULT 'and',
    auto_offset_reset varchar(10) NOT NULL DEFAULT 'latest',
    reset_offset boolean NOT NULL DEFAULT false,
    auto_commit boolean NOT NULL DEFAULT true,
    labels text[],
    PRIMARY KEY (workspace_id, path)
);

CREATE TABLE nats_trigger (
    path varchar(255) NOT NULL,
    nats_resource_path varchar(255) NOT NULL,
    subjects varchar(255)[] NOT NULL,
    stream_name varchar(255),
    consumer_name varchar(255),
    use_jetstream boolean NOT NULL,
    script_path varchar(255) NOT NULL,
    is_flow boolean NOT NULL,
    workspace_id varchar(50) NOT NULL REFERENCES workspace (id),
    edited_by varchar(50) NOT NULL,
    email varchar(255) NOT NULL,
    permissioned_as varchar(255),
    edited_at timestamptz NOT NULL DEFAULT now(),
    extra_perms jsonb NOT NULL DEFAULT '{}',
    server_id varchar(50),
    last_server_ping timestamptz,
    error text,
    error_handler_path varchar(255),
    error_handler_args jsonb,
    retry jsonb,
    mode trigger_mode NOT NULL DEFAULT 'enabled',
    labels text[],
    PRIMARY KEY (workspace_id, path)
);

CREATE TABLE sqs_trigger (
    path varchar(255) NOT NULL,
    queue_url varchar(255) NOT NULL,
    aws_resource_path varchar(255) NOT NULL,
    message_attributes text[],
    script_path varchar(255) NOT NULL,
    is_flow boolean NOT NULL,
    workspace_id varchar(50) NOT NULL REFERENCES workspace (id),
    edited_by varchar(50) NOT NULL,
    email varchar(255) NOT NULL,
    permissioned_as varchar(255),
    edited_at timestamptz NOT NULL DEFAULT now(),
    extra_perms jsonb NOT NULL DEFAULT '{}',
    error text,
    server_id varchar(50),
    last_server_ping timestamptz,
    aws_auth_resource_type aws_auth_resource_type NOT NULL DEFAULT 'credentials',
    error_handler_path varchar(255),
    error_handler_args jsonb,
    retry jsonb,
    mode trigger_mode NOT NULL DEFAULT 'enabled',
    labels text[],
    PRIMARY KEY (workspace_id, path)
);

CREATE TABLE gcp_trigger (
    gcp_resource_path varchar(255) NOT NULL,
    topic_id varchar(255) NOT NULL,
    subscription_id varchar(255) NOT NULL,
    delivery_type delivery_mode NOT NULL,
    delivery_config jsonb,
    path varchar(255) NOT NULL,
    script_path varchar(255) NOT NULL,
    is_flow boolean NOT NULL,
    workspace_id varchar(50) NOT NULL REFERENCES workspace (id),
    edited_by varchar(50) NOT NULL,
    email varchar(255) NOT NULL,
    permissioned_as varchar(255),
    edited_at timestamptz NOT NULL DEFAULT now(),
    extra_perms jsonb NOT NULL DEFAULT '{}',
    server_id varchar(50),
    last_server_ping timestamptz,
    error text,
    subscription_mode gcp_subscription_mode NOT NULL DEFAULT 'create_update',
    error_handler_path varchar(255),
    error_handler_args jsonb,
    retry jsonb,
    auto_acknowledge_msg boolean DEFAULT true,
    ack_deadline integer,
    mode trigger_mode NOT NULL DEFAULT 'enabled',
    labels text[],
    PRIMARY KEY (workspace_id, path)
);

CREATE TABLE mqtt_trigger (
    mqtt_resource_path varchar(255) NOT NULL,
    subscribe_topics jsonb[] NOT NULL,
    client_version mqtt_client_version DEFAULT 'v5',
    v5_config jsonb,
    v3_config jsonb,
    client_id varchar(65535),
    path varchar(255) NOT NULL,
    script_path varchar(255) NOT NULL,
    is_flow boolean NOT NULL,
    workspace_id varchar(50) NOT NULL REFERENCES workspace (id),
    edited_by varchar(50) NOT NULL,
    email varchar(255) NOT NULL,
    permissioned_as varchar(255),
    edited_at timestamptz NOT NULL DEFAULT now(),
    extra_perms jsonb NOT NULL DEFAULT '{}',
    server_id varchar(50),
    last_server_ping timestamptz,
    error text,
    error_handler_path varchar(255),
    error_handler_args jsonb,
    retry jsonb,
    mode trigger_mode NOT NULL DEFAULT 'enabled',
    labels text[],
    PRIMARY KEY (workspace_id, path)
);

CREATE TABLE postgres_trigger (
    path varchar(255) NOT NULL,
    script_path varchar(255) NOT NULL,
    is_flow boolean NOT NULL,
    workspace_id varchar(50) NOT NULL REFERENCES workspace (id),
    edited_by varchar(50) NOT NULL,
    email varchar(255) NOT NULL,
    permissioned_as varchar(255),
    edited_at timestamptz NOT NULL DEFAULT now(),
    extra_perms jsonb DEFAULT '{}',
    postgres_resource_path varchar(255) NOT NULL,
    error text,
    server_id varchar(50),
    last_server_ping timestamptz,
    replication_slot_name varchar(255) NOT NULL,
    publication_name varchar(255) NOT NULL,
    error_handler_path varchar(255),
    error_handler_args jsonb,
    retry jsonb,
    mode trigger_mode NOT NULL DEFAULT 'enabled',
    labels text[],
    PRIMARY KEY (workspace_id, path)
);

CREATE TABLE email_trigger (
    path varchar(255) NOT NULL,
    local_part varchar(255) NOT NULL,
    workspaced_local_part boolean NOT NULL DEFAULT false,
    script_path varchar(255) NOT NULL,
    is_flow boolean NOT NULL,
    workspace_id varchar(50) NOT NULL REFERENCES workspace (id),
    edited_by varchar(50) NOT NULL,
    email varchar(255) NOT NULL,
    permissioned_as varchar(255),
    edited_at timestamptz NOT NULL DEFAULT now(),
    extra_perms jsonb NOT NULL DEFAULT '{}',
    error_handler_path varchar(255),
    error_handler_args jsonb,
    retry jsonb,
    mode trigger_mode NOT NULL DEFAULT 'enabled',
    labels text[],
    PRIMARY KEY (workspace_id, path)
);

CREATE TABLE capture_config (
    workspace_id varchar(50) NOT NULL REFERENCES workspace (id),
    path varchar(255) NOT NULL,
    is_flow boolean NOT NULL,
    trigger_kind trigger_kind NOT NULL,
    trigger_config jsonb,
    owner varchar(50) NOT NULL,
    email varchar(255) NOT NULL,
    server_id varchar(50),
    last_client_ping timestamptz,
    last_server_ping timestamptz,
    error text,
    PRIMARY KEY (workspace_id, path, is_flow, trigger_kind)
);

CREATE TABLE capture (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id varchar(50) NOT NULL REFERENCES workspace (id),
    path varchar(255) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by varchar(50) NOT NULL,
    main_args jsonb NOT NULL DEFAULT 'null',
    is_flow boolean NOT NULL,
    trigger_kind trigger_kind NOT NULL,
    preprocessor_args jsonb
);
CREATE INDEX capture_runnable ON capture (workspace_id, path, is_flow, created_at DESC);

CREATE TABLE schedule (
    workspace_id varchar(50) NOT NULL REFERENCES workspace (id),
    path varchar(255) NOT NULL,
    edited_by varchar(255) NOT NULL,
    edited_at timestamptz NOT NULL DEFAULT now(),
    schedule varchar(255) NOT NULL,
    enabled boolean NOT NULL DEFAULT true,
    script_path varchar(255) NOT NULL,
    args jsonb,
    extra_perms jsonb NOT NULL DEFAULT '{}',
    is_flow boolean NOT NULL DEFAULT false,
    email varchar(255) NOT NULL,
    error text,
    timezone varchar(255) NOT NULL DEFAULT 'UTC',
    on_failure varchar(1000),
    on_recovery varchar(1000),
    on_failure_times integer,
    on_failure_exact boolean,
    on_failure_extra_args jsonb,
    on_recovery_times integer,
    on_recovery_extra_args jsonb,
    ws_error_handler_muted boolean NOT NULL DEFAULT false,
    retry jsonb,
    summary varchar(512),
    no_flow_overlap boolean NOT NULL DEFAULT false,
    tag varchar(50),
    paused_until timestamptz,
    on_success varchar(1000),
    on_success_extra_args jsonb,
    cron_version text,
    description text,
    PRIMARY KEY (workspace_id, path)
);

CREATE TABLE v2_job (
    id uuid PRIMARY KEY,
    raw_code text,
    raw_lock text,
    raw_flow jsonb,
    tag varchar(255) NOT NULL DEFAULT 'other',
    workspace_id varchar(50) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by varchar(255) NOT NULL,
    permissioned_as varchar(55) NOT NULL,
    permissioned_as_email varchar(255) NOT NULL,
    kind job_kind NOT NULL DEFAULT 'script',
    runnable_id bigint,
    runnable_path varchar(255),
    parent_job uuid,
    root_job uuid,
    script_lang script_lang DEFAULT 'python3',
    script_entrypoint_override varchar(255),
    flow_step integer,
    flow_step_id varchar(255),
    flow_innermost_root_job uuid,
    trigger varchar(255),
    trigger_kind job_trigger_kind,
    same_worker boolean NOT NULL DEFAULT false,
    visible_to_owner boolean NOT NULL DEFAULT true,
    concurrent_limit integer,
    concurrency_time_window_s integer,
    cache_ttl integer,
    timeout integer,
    priority smallint,
    preprocessed boolean,
    args jsonb,
    labels text[],
    pre_run_error text
);
CREATE INDEX v2_job_workspace_created ON v2_job (workspace_id, created_at DESC);
CREATE INDEX v2_job_trigger ON v2_job (workspace_id, trigger_kind, trigger);
CREATE INDEX v2_job_parent ON v2_job (parent_job) WHERE parent_job IS NOT NULL;

CREATE TABLE v2_job_queue (
    id uuid PRIMARY KEY REFERENCES v2_job (id) ON DELETE CASCADE,
    workspace_id varchar(50) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    scheduled_for timestamptz NOT NULL,
    running boolean NOT NULL DEFAULT false,
    canceled_by varchar(255),
    canceled_reason text,
    suspend integer NOT NULL DEFAULT 0,
    suspend_until timestamptz,
    tag varchar(255) NOT NULL DEFAULT 'other',
    priority smallint,
    worker varchar(255),
    extras jsonb,
    cache_ignore_s3_path boolean,
    runnable_settings_handle bigint
);
CREATE INDEX v2_job_queue_due ON v2_job_queue (priority DESC NULLS LAST, scheduled_for, created_at)
    WHERE running = false;

CREATE TABLE v2_job_runtime (
    id uuid PRIMARY KEY REFERENCES v2_job_queue (id) ON DELETE CASCADE,
    ping timestamptz DEFAULT now(),
    memory_peak integer
);

CREATE TABLE v2_job_status (
    id uuid PRIMARY KEY REFERENCES v2_job_queue (id) ON DELETE CASCADE,
    flow_status jsonb,
    flow_leaf_jobs jsonb,
    workflow_as_code_status jsonb
);

CREATE TABLE v2_job_completed (
    id uuid PRIMARY KEY REFERENCES v2_job (id) ON DELETE CASCADE,
    workspace_id varchar(50) NOT NULL,
    duration_ms bigint NOT NULL,
    result jsonb,
    deleted boolean NOT NULL DEFAULT false,
    canceled_by varchar(255),
    canceled_reason text,
    flow_status jsonb,
    started_at timestamptz,
    memory_peak integer,
    status job_status NOT NULL,
    completed_at timestamptz NOT NULL DEFAULT now(),
    worker varchar(255),
    workflow_as_code_status jsonb,
    result_columns text[],
    retries uuid[],
    extras jsonb
);
CREATE INDEX v2_job_completed_workspace ON v2_job_completed (workspace_id, completed_at DESC);

CREATE TABLE job_logs (
    job_id uuid PRIMARY KEY,
    workspace_id varchar(50),
    created_at timestamptz NOT NULL DEFAULT now(),
    logs text,
    log_offset integer NOT NULL DEFAULT 0,
    log_file_index text[]
);

CREATE TABLE audit (
    workspace_id varchar(50) NOT NULL,
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    timestamp timestamptz NOT NULL DEFAULT now(),
    username varchar(255) NOT NULL,
    operation varchar(50) NOT NULL,
    action_kind action_kind NOT NULL,
    resource varchar(255),
    parameters jsonb,
    email varchar(255),
    span varchar(255)
);
CREATE INDEX audit_workspace_time ON audit (workspace_id, timestamp DESC);

CREATE TABLE alerts (
    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_type varchar(50) NOT NULL,
    message text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    acknowledged boolean,
    workspace_id text,
    acknowledged_workspace boolean,
    resource text
);

CREATE TABLE zombie_job_counter (
    job_id uuid PRIMARY KEY REFERENCES v2_job (id) ON DELETE CASCADE,
    counter integer NOT NULL DEFAULT 0
);

-- What Windmill lacks: a source event seen before maps to the job it first became.
CREATE TABLE event_dedup (
    workspace_id varchar(50) NOT NULL,
    dedup_key varchar(1000) NOT NULL,
    job_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, dedup_key)
);
CREATE INDEX event_dedup_created ON event_dedup (created_at);

-- Events that could not become jobs, kept with their raw bytes and the reason.
CREATE TABLE event_quarantine (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id varchar(50) NOT NULL,
    trigger_kind trigger_kind NOT NULL,
    trigger_path varchar(255) NOT NULL,
    dedup_key varchar(1000),
    raw bytea NOT NULL,
    info jsonb,
    error text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    redriven_at timestamptz,
    redriven_job_id uuid
);
CREATE INDEX event_quarantine_trigger ON event_quarantine (workspace_id, trigger_kind, trigger_path);
