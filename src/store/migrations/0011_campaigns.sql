-- Outreach: workspace defaults, leads and their lists, imports, campaigns with their steps,
-- the per-lead sequence state the engine ticks over, and one row per step sent.

ALTER TABLE workspaces ADD COLUMN default_daily_limit INTEGER NOT NULL DEFAULT 40 CHECK (default_daily_limit >= 0);
-- The physical postal address campaign footers carry (CAN-SPAM); '' until set.
ALTER TABLE workspaces ADD COLUMN postal_address TEXT NOT NULL DEFAULT '';

-- A person to write to, once per workspace (the address lowercased). `fields` holds the custom
-- columns of the imports as a JSON object. `status` is the lead's outcome across campaigns.
CREATE TABLE leads (
    id           INTEGER PRIMARY KEY,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    email        TEXT NOT NULL,
    first_name   TEXT NOT NULL DEFAULT '',
    last_name    TEXT NOT NULL DEFAULT '',
    company      TEXT NOT NULL DEFAULT '',
    title        TEXT NOT NULL DEFAULT '',
    website      TEXT NOT NULL DEFAULT '',
    time_zone    TEXT NOT NULL DEFAULT '',
    fields       TEXT NOT NULL DEFAULT '{}',
    status       TEXT NOT NULL DEFAULT 'active'
                 CHECK (status IN ('active', 'replied', 'bounced', 'unsubscribed')),
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (workspace_id, email)
);
CREATE INDEX leads_status ON leads(workspace_id, status);

CREATE TABLE lead_lists (
    id           INTEGER PRIMARY KEY,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    UNIQUE (workspace_id, name)
);

CREATE TABLE lead_list_members (
    list_id  INTEGER NOT NULL REFERENCES lead_lists(id) ON DELETE CASCADE,
    lead_id  INTEGER NOT NULL REFERENCES leads(id) ON DELETE CASCADE,
    added_at INTEGER NOT NULL,
    PRIMARY KEY (list_id, lead_id)
) WITHOUT ROWID;
CREATE INDEX lead_list_members_lead ON lead_list_members(lead_id);

-- A CSV import, its progress and its report (the skipped rows in lead_import_skips).
CREATE TABLE lead_imports (
    id           INTEGER PRIMARY KEY,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    list_id      INTEGER REFERENCES lead_lists(id) ON DELETE SET NULL,
    file_name    TEXT NOT NULL DEFAULT '',
    status       TEXT NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done', 'failed')),
    total_rows   INTEGER NOT NULL DEFAULT 0,
    done_rows    INTEGER NOT NULL DEFAULT 0,
    imported     INTEGER NOT NULL DEFAULT 0,
    updated      INTEGER NOT NULL DEFAULT 0,
    error        TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    finished_at  INTEGER
);
CREATE INDEX lead_imports_workspace ON lead_imports(workspace_id, created_at);

CREATE TABLE lead_import_skips (
    import_id INTEGER NOT NULL REFERENCES lead_imports(id) ON DELETE CASCADE,
    row       INTEGER NOT NULL,
    email     TEXT NOT NULL,
    reason    TEXT NOT NULL,
    PRIMARY KEY (import_id, row)
) WITHOUT ROWID;

-- A campaign. The window is minutes after local midnight [window_start, window_end) on `days`
-- (a comma-separated list of mon..sun), in each lead's zone when use_lead_time_zone and the
-- lead has one, else in `time_zone`. 0 caps mean none.
CREATE TABLE campaigns (
    id                  INTEGER PRIMARY KEY,
    workspace_id        INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    name                TEXT NOT NULL,
    status              TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'active', 'paused', 'completed')),
    time_zone           TEXT NOT NULL,
    days                TEXT NOT NULL DEFAULT 'mon,tue,wed,thu,fri',
    window_start        INTEGER NOT NULL DEFAULT 540 CHECK (window_start BETWEEN 0 AND 1440),
    window_end          INTEGER NOT NULL DEFAULT 1020 CHECK (window_end BETWEEN 0 AND 1440),
    use_lead_time_zone  INTEGER NOT NULL DEFAULT 1,
    start_date          TEXT NOT NULL DEFAULT '',
    daily_cap           INTEGER NOT NULL DEFAULT 0 CHECK (daily_cap >= 0),
    min_gap_seconds     INTEGER NOT NULL DEFAULT 0 CHECK (min_gap_seconds >= 0),
    jitter_seconds      INTEGER NOT NULL DEFAULT 0 CHECK (jitter_seconds >= 0),
    stop_on_reply       INTEGER NOT NULL DEFAULT 1,
    stop_company_on_reply INTEGER NOT NULL DEFAULT 0,
    track_opens         INTEGER NOT NULL DEFAULT 0,
    track_clicks        INTEGER NOT NULL DEFAULT 0,
    unsubscribe_footer  INTEGER NOT NULL DEFAULT 0,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    started_at          INTEGER
);
CREATE INDEX campaigns_workspace ON campaigns(workspace_id, status);

CREATE TABLE campaign_mailboxes (
    campaign_id INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    mailbox_id  INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    PRIMARY KEY (campaign_id, mailbox_id)
) WITHOUT ROWID;

CREATE TABLE campaign_lists (
    campaign_id INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    list_id     INTEGER NOT NULL REFERENCES lead_lists(id) ON DELETE CASCADE,
    PRIMARY KEY (campaign_id, list_id)
) WITHOUT ROWID;

-- The steps of a sequence, in `position` order; the delay counts from the previous step's send
-- (from the campaign's start for the first).
CREATE TABLE campaign_steps (
    id          INTEGER PRIMARY KEY,
    campaign_id INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    delay       INTEGER NOT NULL DEFAULT 0 CHECK (delay >= 0),
    delay_unit  TEXT NOT NULL DEFAULT 'days' CHECK (delay_unit IN ('days', 'business_days', 'hours')),
    new_thread  INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL
);
CREATE INDEX campaign_steps_campaign ON campaign_steps(campaign_id, position);

-- The A/B variants of a step (a step has at least one), chosen by weight.
CREATE TABLE campaign_variants (
    id       INTEGER PRIMARY KEY,
    step_id  INTEGER NOT NULL REFERENCES campaign_steps(id) ON DELETE CASCADE,
    label    TEXT NOT NULL,
    subject  TEXT NOT NULL,
    body     TEXT NOT NULL,
    html     TEXT NOT NULL DEFAULT '',
    weight   INTEGER NOT NULL DEFAULT 1 CHECK (weight >= 0)
);
CREATE INDEX campaign_variants_step ON campaign_variants(step_id);

-- Where each lead stands in each campaign: steps_done steps sent, the next one due at due_at,
-- from the mailbox that sent the first (kept for the follow-ups).
CREATE TABLE campaign_leads (
    campaign_id  INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    lead_id      INTEGER NOT NULL REFERENCES leads(id) ON DELETE CASCADE,
    status       TEXT NOT NULL DEFAULT 'active'
                 CHECK (status IN ('active', 'finished', 'replied', 'bounced', 'unsubscribed', 'paused')),
    steps_done   INTEGER NOT NULL DEFAULT 0,
    due_at       INTEGER NOT NULL,
    mailbox_id   INTEGER REFERENCES mailboxes(id) ON DELETE SET NULL,
    stop_reason  TEXT NOT NULL DEFAULT '',
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, lead_id)
) WITHOUT ROWID;
CREATE INDEX campaign_leads_due ON campaign_leads(campaign_id, due_at) WHERE status = 'active';
CREATE INDEX campaign_leads_lead ON campaign_leads(lead_id);

-- One row per (campaign, lead, step) sent, written in the transaction that enqueues it: the
-- unique key makes a second send of a step impossible.
CREATE TABLE campaign_sends (
    id          INTEGER PRIMARY KEY,
    campaign_id INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    lead_id     INTEGER NOT NULL REFERENCES leads(id) ON DELETE CASCADE,
    step_id     INTEGER NOT NULL REFERENCES campaign_steps(id) ON DELETE CASCADE,
    variant_id  INTEGER REFERENCES campaign_variants(id) ON DELETE SET NULL,
    mailbox_id  INTEGER REFERENCES mailboxes(id) ON DELETE SET NULL,
    message_id  TEXT NOT NULL,
    subject     TEXT NOT NULL,
    sent_at     INTEGER NOT NULL,
    UNIQUE (campaign_id, lead_id, step_id)
);
CREATE INDEX campaign_sends_message ON campaign_sends(message_id);
CREATE INDEX campaign_sends_day ON campaign_sends(campaign_id, sent_at);
CREATE INDEX campaign_sends_mailbox ON campaign_sends(mailbox_id, sent_at);

-- Events are joined to campaign sends by our Message-ID.
CREATE INDEX events_message ON events(message_id);
-- The engine and the analytics find a lead's replies, bounces and unsubscribes by address.
CREATE INDEX events_peer ON events(workspace_id, recipient, kind);
