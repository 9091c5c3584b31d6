//! The public unsubscribe pages behind the List-Unsubscribe link (RFC 8058).
//!
//! GET shows a confirmation with a button and changes nothing (link scanners follow GETs). POST
//! unsubscribes: from that button, or straight from a mail provider's one-click request (body
//! `List-Unsubscribe=One-Click`). The signed token is the authorization, so neither needs a
//! session or the CSRF cookie. A token that does not verify is a 404; a repeat is harmless.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use crate::app::App;
use crate::error::Error;
use crate::tracking::unsubscribe;
use crate::web::session::Ctx;
use crate::web::{WebResult, render};

#[derive(Template)]
#[template(path = "unsubscribe/confirm.html")]
struct ConfirmPage {
    ctx: Ctx,
    token: String,
    recipient: String,
}

#[derive(Template)]
#[template(path = "unsubscribe/done.html")]
struct DonePage {
    ctx: Ctx,
    recipient: String,
}

pub async fn confirm(State(app): State<App>, Path(token): Path<String>) -> WebResult {
    let subscriber = unsubscribe::verify(&app.keys, &token).ok_or(Error::NotFound)?;
    let page = ConfirmPage { ctx: Ctx::anonymous(""), token, recipient: subscriber.recipient };
    Ok(render(StatusCode::OK, &page))
}

pub async fn submit(State(app): State<App>, Path(token): Path<String>, body: Bytes) -> WebResult {
    let how = if body.windows(26).any(|w| w.eq_ignore_ascii_case(b"List-Unsubscribe=One-Click")) {
        "one-click (RFC 8058)"
    } else {
        "unsubscribe page"
    };
    let done = unsubscribe::unsubscribe(&app, &token, how).await?;
    Ok(render(StatusCode::OK, &DonePage { ctx: Ctx::anonymous(""), recipient: done.recipient }))
}
