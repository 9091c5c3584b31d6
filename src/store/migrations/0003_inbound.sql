-- Inbound mail: threads, what each stored message answers and what it was classified as, and
-- the mailbox that receives a domain's role addresses (postmaster@, abuse@, dmarc-reports@).

-- A conversation of one mailbox with one correspondent.
CREATE TABLE threads (
    id            INTEGER PRIMARY KEY,
    mailbox_id    INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    -- The subject without Re:/Fwd: prefixes, lowercased.
    subject       TEXT NOT NULL DEFAULT '',
    -- The other party's address, lowercased.
    correspondent TEXT NOT NULL DEFAULT '',
    -- The sent message the thread started with, when it started with one of ours.
    root_message  INTEGER REFERENCES messages(id) ON DELETE SET NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX threads_correspondent ON threads(mailbox_id, correspondent, subject);
CREATE INDEX threads_root ON threads(root_message);

ALTER TABLE mail ADD COLUMN thread_id INTEGER REFERENCES threads(id) ON DELETE SET NULL;
-- The first In-Reply-To id, without angle brackets.
ALTER TABLE mail ADD COLUMN in_reply_to TEXT NOT NULL DEFAULT '';
-- The sent message (messages.id) or stored mail (mail.id) this message answers.
ALTER TABLE mail ADD COLUMN answers_message INTEGER REFERENCES messages(id) ON DELETE SET NULL;
ALTER TABLE mail ADD COLUMN answers_mail INTEGER REFERENCES mail(id) ON DELETE SET NULL;
-- dsn, complaint, feedback, auto_reply, unsubscribe_request, personal; '' when not classified.
ALTER TABLE mail ADD COLUMN classification TEXT NOT NULL DEFAULT '';
CREATE INDEX mail_thread ON mail(thread_id);
CREATE INDEX mail_answers_message ON mail(answers_message);
CREATE INDEX mail_answers_mail ON mail(answers_mail);

-- Finding what a reply, bounce or complaint is about.
CREATE INDEX messages_message_id ON messages(workspace_id, message_id);
CREATE INDEX queue_recipient ON queue(workspace_id, recipient COLLATE NOCASE);

-- The mailbox chosen to receive the domain's role addresses; NULL: the domain's first mailbox.
ALTER TABLE domains ADD COLUMN role_mailbox_id INTEGER REFERENCES mailboxes(id) ON DELETE SET NULL;
