//! The command line on a data dir without a running appliance: where the config comes from, the
//! `NOUN VERB` commands, their `--json` output, and the audit rows they leave.

mod common;

use std::path::Path;

use common::{cli, run_to_exit};

const ADMIN: &str = "ops@acme.test";
const DOMAIN: &str = "cli-grove.test";

fn ok(output: &std::process::Output) -> String {
    assert!(output.status.success(), "failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout.clone()).expect("utf-8 stdout")
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines().map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"))).collect()
}

fn audit_count(data: &Path, action: &str) -> i64 {
    let conn = rusqlite::Connection::open(data.join("inboxgrove.db")).expect("open the database");
    conn.query_row("SELECT count(*) FROM audit_log WHERE action = ?1", [action], |row| row.get(0)).expect("count")
}

/// A data dir with the first admin (and so the first workspace) and one domain.
fn with_domain() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    ok(&cli(&data, &["admin", "create", "--email", ADMIN], Some("a long cli password\n")));
    ok(&cli(&data, &["domain", "add", DOMAIN, "--dkim", "ed25519"], None));
    (dir, data)
}

fn write_config(path: &Path, hostname: &str) {
    std::fs::write(path, format!("hostname = \"{hostname}\"\n")).expect("write config");
}

fn hostname_of(output: &std::process::Output) -> String {
    let text = ok(output);
    let line = text.lines().find(|l| l.starts_with("hostname")).expect("hostname in config check").to_string();
    line.split('"').nth(1).expect("quoted hostname").to_string()
}

#[test]
fn config_comes_from_the_flag_then_the_env_var_then_the_system_file_then_defaults() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (flag, env, system) = (dir.path().join("flag.toml"), dir.path().join("env.toml"), dir.path().join("etc.toml"));
    write_config(&flag, "flag.test");
    write_config(&env, "env.test");
    write_config(&system, "system.test");
    let (flag_s, env_s, system_s) = (flag.to_str().unwrap(), env.to_str().unwrap(), system.to_str().unwrap());
    let missing = dir.path().join("absent.toml");
    // An empty INBOXGROVE_CONFIG counts as unset; later entries win.
    let check = |args: &[&str], vars: &[(&str, &str)]| {
        let mut env = vec![("INBOXGROVE_CONFIG", "")];
        env.extend_from_slice(vars);
        run_to_exit(args, &env)
    };
    let both = [("INBOXGROVE_CONFIG", env_s), ("INBOXGROVE_SYSTEM_CONFIG", system_s)];
    assert_eq!(hostname_of(&check(&["config", "check", "--config", flag_s], &both)), "flag.test", "--config first");
    assert_eq!(hostname_of(&check(&["config", "check"], &both)), "env.test", "then INBOXGROVE_CONFIG");
    let system_only = [("INBOXGROVE_SYSTEM_CONFIG", system_s)];
    assert_eq!(hostname_of(&check(&["config", "check"], &system_only)), "system.test", "then the system file");
    let none = [("INBOXGROVE_SYSTEM_CONFIG", missing.to_str().unwrap())];
    assert_ne!(hostname_of(&check(&["config", "check"], &none)), "system.test", "then the embedded defaults");
}

#[test]
fn config_check_warns_about_a_hostname_or_ports_that_other_servers_cannot_use() {
    let dir = tempfile::tempdir().expect("temp dir");
    let absent = dir.path().join("absent.toml");
    let mut env = vec![("INBOXGROVE_CONFIG", ""), ("INBOXGROVE_SYSTEM_CONFIG", absent.to_str().unwrap())];
    let defaults = run_to_exit(&["config", "check"], &env);
    ok(&defaults);
    let said = stderr(&defaults);
    assert!(said.contains("warning: The hostname is \"localhost\"") && said.contains("Set hostname"), "{said}");
    assert!(said.contains("smtp.submission listens on port 2587") && said.contains("smtp.public_submission_port"));
    assert!(said.contains("imap.listen_tls listens on port 2993") && said.contains("imap.public_port"), "{said}");

    env.extend([
        ("INBOXGROVE_HOSTNAME", "mail.agency.com"),
        ("INBOXGROVE_SMTP__SUBMISSION", "0.0.0.0:587"),
        ("INBOXGROVE_SMTP__INBOUND", "0.0.0.0:25"),
        ("INBOXGROVE_IMAP__PUBLIC_PORT", "2993"),
    ]);
    let production = run_to_exit(&["config", "check"], &env);
    ok(&production);
    assert!(!stderr(&production).contains("warning"), "{}", stderr(&production));
}

#[test]
fn a_command_says_when_it_creates_the_data_directory_and_which_config_it_used() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("sys-data");
    let system = dir.path().join("etc.toml");
    std::fs::write(&system, format!("hostname = \"mail.grove.test\"\ndata_dir = {:?}\n", data.to_str().unwrap()))
        .expect("write config");
    let env = [("INBOXGROVE_SYSTEM_CONFIG", system.to_str().unwrap()), ("INBOXGROVE_CONFIG", "")];
    let first = run_to_exit(&["workspace", "list"], &env);
    assert_eq!(ok(&first), "(no workspaces)\n");
    let said = stderr(&first);
    assert!(said.contains("Created data directory") && said.contains("sys-data"), "{said}");
    assert!(said.contains(system.to_str().unwrap()), "names the config file: {said}");
    assert!(data.join("inboxgrove.db").exists(), "the system file's data_dir was used");
    let again = run_to_exit(&["workspace", "list"], &env);
    assert!(!stderr(&again).contains("Created data directory"), "only when it creates one: {}", stderr(&again));
}

#[test]
fn lists_and_shows_print_json_and_say_so_when_empty() {
    let (_dir, data) = with_domain();
    let workspaces = json_lines(&ok(&cli(&data, &["workspace", "list", "--json"], None)));
    assert_eq!(workspaces.len(), 1);
    assert_eq!(workspaces[0]["time_zone"], "UTC");
    let domains = json_lines(&ok(&cli(&data, &["domain", "list", "--json"], None)));
    assert_eq!(domains.len(), 1);
    assert_eq!(domains[0]["name"], DOMAIN);
    assert_eq!(domains[0]["mailbox_count"], 1, "its dedicated role mailbox");
    assert_eq!(domains[0]["role_mailbox"], format!("postmaster@{DOMAIN}").as_str());
    assert!(ok(&cli(&data, &["domain", "ls"], None)).contains(DOMAIN), "text table");
    let shown: serde_json::Value =
        serde_json::from_str(&ok(&cli(&data, &["domain", "show", DOMAIN, "--json"], None))).expect("one JSON object");
    assert_eq!(shown["name"], DOMAIN);
    assert!(shown["records"].as_array().is_some_and(|r| !r.is_empty()), "{shown}");
    assert!(ok(&cli(&data, &["domain", "records", DOMAIN], None)).contains("_domainkey"), "old verb still works");

    let roles = json_lines(&ok(&cli(&data, &["mailbox", "list", "--json"], None)));
    assert_eq!(roles.len(), 1, "only the role mailbox: {roles:?}");
    assert_eq!(
        (roles[0]["address"].as_str(), roles[0]["role"].as_bool()),
        (Some("postmaster@cli-grove.test"), Some(true))
    );
    assert_eq!(ok(&cli(&data, &["alias", "list", "--json"], None)), "");
    assert_eq!(ok(&cli(&data, &["alias", "ls"], None)), "(no aliases)\n", "on standard output, as other lists");
    assert_eq!(ok(&cli(&data, &["queue", "list", "--json"], None)), "");
    let members = json_lines(&ok(&cli(&data, &["member", "list", "--json"], None)));
    assert_eq!(members.len(), 1);
    assert_eq!((members[0]["email"].as_str(), members[0]["role"].as_str()), (Some(ADMIN), Some("owner")));

    ok(&cli(&data, &["mailbox", "create", "--domain", DOMAIN, "--count", "3"], None));
    let mailboxes = json_lines(&ok(&cli(&data, &["mailbox", "list", "--domain", DOMAIN, "--json"], None)));
    assert_eq!(mailboxes.len(), 4, "three and the role mailbox");
    let senders: Vec<_> = mailboxes.iter().filter(|m| m["role"] == false).collect();
    assert_eq!(senders.len(), 3);
    let email = senders[0]["address"].as_str().expect("address").to_string();
    let one: serde_json::Value =
        serde_json::from_str(&ok(&cli(&data, &["mailbox", "show", &email, "--json"], None))).expect("JSON");
    assert_eq!(one["address"], email.as_str());
    assert_eq!(one["status"], "active");

    ok(&cli(&data, &["workspace", "add", "Empty", "--owner", ADMIN], None));
    let empty = ["mailbox", "list", "--workspace", "Empty"];
    assert_eq!(ok(&cli(&data, &[&empty[..], &["--json"]].concat(), None)), "", "an empty --json list prints nothing");
    assert_eq!(ok(&cli(&data, &empty, None)), "(no mailboxes)\n");
}

#[test]
fn mailbox_create_prints_a_sequencer_file_with_the_new_passwords() {
    let (_dir, data) = with_domain();
    let plain = ok(&cli(&data, &["mailbox", "add", "--domain", DOMAIN, "--count", "2"], None));
    assert!(plain.starts_with("email,password\r\n"), "plain stays the default: {plain}");
    let file =
        ok(&cli(&data, &["mailbox", "create", "--domain", DOMAIN, "--count", "2", "--format", "instantly"], None));
    let mut reader = csv::Reader::from_reader(file.as_bytes());
    let header = reader.headers().expect("header").clone();
    assert_eq!(&header[0], "Email");
    let smtp_password = header.iter().position(|h| h == "SMTP Password").expect("SMTP Password column");
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r[smtp_password].len() >= 12), "passwords filled in: {file}");
    let smartlead =
        cli(&data, &["mailbox", "create", "--domain", DOMAIN, "--count", "1", "--format", "smartlead"], None);
    assert!(
        stderr(&smartlead).contains("warning: The hostname is"),
        "a warning before the file: {}",
        stderr(&smartlead)
    );
    let smartlead = ok(&smartlead);
    assert_eq!(smartlead.lines().count(), 2, "header and one row: {smartlead}");
    let reset = ok(&cli(&data, &["mailbox", "reset-password", &rows[0][0]], None));
    assert!(reset.starts_with("email,password\r\n") && reset.contains(&rows[0][0]), "{reset}");
    assert!(!reset.contains(&rows[0][smtp_password]), "a new password");
    assert_eq!(audit_count(&data, "mailbox.password_reset"), 1);
    let exported = cli(&data, &["mailbox", "export", "--domain", DOMAIN, "--format", "instantly"], None);
    assert!(stderr(&exported).contains("warning: The hostname is"), "before an export too: {}", stderr(&exported));
    assert_eq!(ok(&exported).lines().count(), 6, "header and five mailboxes");
    let plain = cli(&data, &["mailbox", "add", "--domain", DOMAIN, "--count", "1"], None);
    assert!(!stderr(&plain).contains("warning:"), "plain email,password names no host: {}", stderr(&plain));
}

#[test]
fn a_mailbox_set_to_its_current_values_writes_no_audit_row() {
    let (_dir, data) = with_domain();
    let created = ok(&cli(&data, &["mailbox", "create", "--domain", DOMAIN, "--count", "1"], None));
    let email = created.lines().nth(1).and_then(|l| l.split(',').next()).expect("email").to_string();
    ok(&cli(&data, &["mailbox", "set", &email, "--daily-limit", "12"], None));
    assert_eq!(audit_count(&data, "mailbox.update"), 1);
    ok(&cli(&data, &["mailbox", "set", &email, "--daily-limit", "12", "--status", "active"], None));
    assert_eq!(audit_count(&data, "mailbox.update"), 1, "no change, no audit row");
    ok(&cli(&data, &["mailbox", "set", &email, "--daily-limit", "13"], None));
    assert_eq!(audit_count(&data, "mailbox.update"), 2);
}

#[test]
fn a_domain_with_mailboxes_is_not_removed_until_they_are() {
    let (_dir, data) = with_domain();
    let created = ok(&cli(&data, &["mailbox", "create", "--domain", DOMAIN, "--count", "2"], None));
    let refused = cli(&data, &["domain", "remove", DOMAIN], None);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("still has 3 mailboxes"), "two and the role mailbox: {}", stderr(&refused));
    let postmaster = format!("postmaster@{DOMAIN}");
    for line in created.lines().skip(1) {
        let email = line.split(',').next().expect("email");
        ok(&cli(&data, &["mailbox", "remove", email], None));
    }
    assert!(stderr(&cli(&data, &["domain", "remove", DOMAIN], None)).contains("still has 1 mailboxes"));
    ok(&cli(&data, &["mailbox", "remove", &postmaster], None));
    assert_eq!(audit_count(&data, "mailbox.remove"), 3);
    ok(&cli(&data, &["domain", "rm", DOMAIN], None));
    assert_eq!(audit_count(&data, "domain.remove"), 1);
    assert_eq!(ok(&cli(&data, &["domain", "list"], None)), "(no domains)\n");
    assert!(!cli(&data, &["domain", "remove", DOMAIN], None).status.success(), "gone");
}

#[test]
fn workspaces_are_added_renamed_and_given_a_time_zone() {
    let (_dir, data) = with_domain();
    let refused = cli(&data, &["workspace", "add", "Second", "--owner", "nobody@acme.test"], None);
    assert!(!refused.status.success(), "the owner must exist");
    ok(&cli(&data, &["workspace", "add", "Second", "--owner", ADMIN], None));
    assert_eq!(audit_count(&data, "workspace.create"), 2);
    let ambiguous = cli(&data, &["domain", "list"], None);
    assert!(stderr(&ambiguous).contains("--workspace"), "two workspaces: {}", stderr(&ambiguous));
    assert!(ok(&cli(&data, &["domain", "show", DOMAIN], None)).contains("_domainkey"), "the name tells");
    let set = ok(&cli(
        &data,
        &["workspace", "set", "Second", "--name", "Outbound", "--time-zone", "Europe/Berlin", "--json"],
        None,
    ));
    let updated: serde_json::Value = serde_json::from_str(&set).expect("JSON");
    assert_eq!((updated["name"].as_str(), updated["time_zone"].as_str()), (Some("Outbound"), Some("Europe/Berlin")));
    assert_eq!(audit_count(&data, "workspace.update"), 1);
    ok(&cli(&data, &["workspace", "set", "Outbound", "--time-zone", "Europe/Berlin"], None));
    assert_eq!(audit_count(&data, "workspace.update"), 1, "no change, no audit row");
    assert!(!cli(&data, &["workspace", "set", "Outbound", "--time-zone", "Mars/Olympus"], None).status.success());
    let listed = json_lines(&ok(&cli(&data, &["workspace", "list", "--json"], None)));
    assert_eq!(listed.len(), 2);
}

#[test]
fn workspace_settings_give_new_mailboxes_their_daily_limit() {
    let (_dir, data) = with_domain();
    let address = "Acme Outreach Ltd\n1 Main Street\nSpringfield, IL 62701";
    let set = cli(
        &data,
        &[
            "workspace",
            "set",
            "1",
            "--default-daily-limit",
            "25",
            "--list-unsubscribe",
            "on",
            "--postal-address",
            address,
            "--json",
        ],
        None,
    );
    let updated: serde_json::Value = serde_json::from_str(&ok(&set)).expect("one JSON object");
    assert_eq!(updated["default_daily_limit"], 25);
    assert_eq!(updated["list_unsubscribe"], true);
    assert_eq!(updated["postal_address"], address);
    assert_eq!((updated["id"].as_i64(), updated["time_zone"].as_str()), (Some(1), Some("UTC")), "{updated}");
    assert!(updated["name"].is_string() && updated["created_at"].is_i64(), "the existing fields stay: {updated}");
    let said = stderr(&set);
    assert!(said.starts_with("workspace 1: name \"") && said.contains("\", time zone UTC, "), "{said}");
    assert!(
        said.contains(
            "default daily limit 25, List-Unsubscribe on, postal address \"Acme Outreach Ltd, 1 Main Street, \
             Springfield, IL 62701\""
        ),
        "{said}"
    );
    assert_eq!(audit_count(&data, "workspace.update"), 1, "one entry for the three settings");
    let listed = json_lines(&ok(&cli(&data, &["workspace", "list", "--json"], None)));
    assert_eq!(
        (listed[0]["default_daily_limit"].as_i64(), listed[0]["list_unsubscribe"].as_bool()),
        (Some(25), Some(true))
    );

    let created = ok(&cli(&data, &["mailbox", "add", "--domain", DOMAIN, "--count", "1"], None));
    let email = created.lines().nth(1).and_then(|l| l.split(',').next()).expect("email").to_string();
    let shown: serde_json::Value =
        serde_json::from_str(&ok(&cli(&data, &["mailbox", "show", &email, "--json"], None))).expect("JSON");
    assert_eq!(shown["daily_limit"], 25, "the workspace's default");
    let role = format!("postmaster@{DOMAIN}");
    let made_before: serde_json::Value =
        serde_json::from_str(&ok(&cli(&data, &["mailbox", "show", &role, "--json"], None))).expect("JSON");
    assert_eq!(made_before["daily_limit"], 40, "existing mailboxes keep theirs");
    let given = ok(&cli(&data, &["mailbox", "add", "--domain", DOMAIN, "--count", "1", "--daily-limit", "7"], None));
    let email = given.lines().nth(1).and_then(|l| l.split(',').next()).expect("email").to_string();
    let shown: serde_json::Value =
        serde_json::from_str(&ok(&cli(&data, &["mailbox", "show", &email, "--json"], None))).expect("JSON");
    assert_eq!(shown["daily_limit"], 7, "a limit given at creation wins");

    let nothing = cli(&data, &["workspace", "set", "1"], None);
    assert!(!nothing.status.success());
    for option in ["--name", "--time-zone", "--default-daily-limit", "--list-unsubscribe", "--postal-address"] {
        assert!(stderr(&nothing).contains(option), "names {option}: {}", stderr(&nothing));
    }
    let too_many = cli(&data, &["workspace", "set", "1", "--default-daily-limit", "10001"], None);
    assert!(!too_many.status.success());
    assert!(
        stderr(&too_many).contains("The default daily limit must be a whole number from 0 to 10000."),
        "{}",
        stderr(&too_many)
    );
    let off = ok(&cli(
        &data,
        &["workspace", "set", "1", "--list-unsubscribe", "off", "--postal-address", "", "--json"],
        None,
    ));
    let off: serde_json::Value = serde_json::from_str(&off).expect("JSON");
    assert_eq!((off["list_unsubscribe"].as_bool(), off["postal_address"].as_str()), (Some(false), Some("")));
    assert_eq!(audit_count(&data, "workspace.update"), 2);
}

#[test]
fn members_are_invited_with_a_link_and_the_last_owner_stays() {
    let (_dir, data) = with_domain();
    let link = ok(&cli(&data, &["member", "invite", "new@acme.test", "--role", "viewer"], None));
    assert!(link.trim().contains("/invite/") && link.lines().count() == 1, "{link}");
    assert_eq!(audit_count(&data, "member.invite"), 1);
    let last = cli(&data, &["member", "remove", ADMIN], None);
    assert!(!last.status.success());
    assert!(stderr(&last).contains("last owner"), "{}", stderr(&last));
    let stranger = cli(&data, &["member", "remove", "new@acme.test"], None);
    assert!(stderr(&stranger).contains("is not a member"), "an invite is not a membership: {}", stderr(&stranger));
    assert_eq!(audit_count(&data, "member.remove"), 0);

    // A second admin (an owner of the first workspace too) owns a second workspace. Removing
    // someone who belongs to one workspace needs no --workspace; someone in both needs it.
    ok(&cli(&data, &["admin", "add", "--email", "other@acme.test"], Some("another long password\n")));
    ok(&cli(&data, &["workspace", "add", "Second", "--owner", "other@acme.test"], None));
    let list = cli(&data, &["member", "list"], None);
    assert!(!list.status.success() && stderr(&list).contains("--workspace"), "which one: {}", stderr(&list));
    let both = cli(&data, &["member", "remove", "other@acme.test"], None);
    assert!(!both.status.success() && stderr(&both).contains("--workspace"), "{}", stderr(&both));
    let removed = cli(&data, &["member", "remove", ADMIN], None);
    assert!(removed.status.success(), "another owner stays: {}", stderr(&removed));
    assert!(stderr(&removed).contains(&format!("{ADMIN} (owner) is no longer a member")), "{}", stderr(&removed));
    assert_eq!(audit_count(&data, "member.remove"), 1);
    let members = json_lines(&ok(&cli(&data, &["member", "list", "--workspace", "1", "--json"], None)));
    assert_eq!(members.len(), 1, "{members:?}");
    assert_eq!(members[0]["email"].as_str(), Some("other@acme.test"));
}

#[test]
fn domain_add_sends_role_mail_to_a_chosen_mailbox_and_the_role_mailbox_is_never_exported() {
    let (_dir, data) = with_domain();
    let postmaster = format!("postmaster@{DOMAIN}");
    let created = ok(&cli(&data, &["mailbox", "create", "--domain", DOMAIN, "--count", "1"], None));
    let chosen = created.lines().nth(1).and_then(|l| l.split(',').next()).expect("email").to_string();

    let added = cli(&data, &["domain", "add", "cli-second.test", "--role-mailbox", &chosen], None);
    ok(&added);
    assert!(stderr(&added).contains(&format!("role mail goes to {chosen}")), "{}", stderr(&added));
    let shown: serde_json::Value =
        serde_json::from_str(&ok(&cli(&data, &["domain", "show", "cli-second.test", "--json"], None))).expect("JSON");
    assert_eq!((shown["role_mailbox"].as_str(), shown["mailbox_count"].as_i64()), (Some(chosen.as_str()), Some(0)));
    assert!(!cli(&data, &["mailbox", "show", "postmaster@cli-second.test"], None).status.success(), "none made");
    let audited = rusqlite::Connection::open(data.join("inboxgrove.db"))
        .expect("open")
        .query_row("SELECT detail FROM audit_log WHERE action = 'domain.add' AND target = 'cli-second.test'", [], |r| {
            r.get::<_, String>(0)
        })
        .expect("audited");
    assert!(audited.ends_with(&format!("role mail to {chosen}")), "{audited}");

    let unknown = cli(&data, &["domain", "add", "cli-third.test", "--role-mailbox", "nobody@elsewhere.test"], None);
    assert!(!unknown.status.success());
    assert!(stderr(&unknown).contains("Choose a mailbox of this workspace"), "{}", stderr(&unknown));
    assert!(!cli(&data, &["domain", "show", "cli-third.test"], None).status.success(), "not added");

    let set = cli(&data, &["domain", "set", "cli-second.test", "--role-mailbox", &postmaster], None);
    ok(&set);
    assert!(stderr(&set).contains(&format!("role mail goes to {postmaster}")), "{}", stderr(&set));
    assert_eq!(audit_count(&data, "domain.role_mailbox"), 1);

    // The role mailbox is read over IMAP with a password from a reset, never exported.
    let export = ok(&cli(&data, &["mailbox", "export", "--domain", DOMAIN, "--format", "smartlead"], None));
    assert!(export.contains(&chosen) && !export.contains(&postmaster), "{export}");
    let reset = ok(&cli(&data, &["mailbox", "reset-password", &postmaster], None));
    assert!(reset.lines().nth(1).is_some_and(|l| l.starts_with(&format!("{postmaster},"))), "{reset}");
    let refused = cli(&data, &["mailbox", "reset-password", &postmaster, "--format", "instantly"], None);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("never exported"), "{}", stderr(&refused));
    assert_eq!(audit_count(&data, "mailbox.password_reset"), 1, "refused before any reset");
}
