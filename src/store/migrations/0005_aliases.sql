-- 0005_aliases: addresses of local domains that deliver to mailboxes without being one
-- (`sales@d.test` -> one or more mailboxes of the same workspace), and a catch-all mailbox per
-- domain for local parts nobody has. See src/aliases.rs and src/smtp/inbound/recipients.rs.

CREATE TABLE aliases (
    id           INTEGER PRIMARY KEY,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    domain_id    INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    -- Lowercased, without "+tag".
    local_part   TEXT NOT NULL,
    -- local_part@domain (ASCII form), lowercased: what inbound RCPT TO is compared with.
    address      TEXT NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    UNIQUE (domain_id, local_part)
);
CREATE INDEX aliases_workspace ON aliases(workspace_id, domain_id);

-- The mailboxes an alias delivers to; a deleted mailbox leaves the alias's other targets.
CREATE TABLE alias_targets (
    alias_id   INTEGER NOT NULL REFERENCES aliases(id) ON DELETE CASCADE,
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    PRIMARY KEY (alias_id, mailbox_id)
) WITHOUT ROWID;
CREATE INDEX alias_targets_mailbox ON alias_targets(mailbox_id);

-- The mailbox that receives mail for the domain's unknown local parts; NULL: none (550 5.1.1).
ALTER TABLE domains ADD COLUMN catch_all_mailbox_id INTEGER REFERENCES mailboxes(id) ON DELETE SET NULL;
