//! Stored mail per mailbox and folder, with the UID scheme IMAP needs; local delivery lands here.
