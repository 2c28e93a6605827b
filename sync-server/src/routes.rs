//! Every route the relay serves, in one place.

use axum::Router;
use axum::routing::{delete, get, post};

use crate::state::AppState;
use crate::workspace::{api, invites};
use crate::{automations, forms, http, web};

pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(web::page))
        .route("/join", get(web::page))
        .route("/sw.js", get(web::service_worker))
        .route("/assets/{file}", get(web::asset))
        .route("/sync", get(http::sync))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(http::metrics))
        .route("/api/info", get(http::info))
        .route(
            "/api/workspaces",
            post(api::create_workspace).get(api::list_workspaces),
        )
        .route(
            "/api/workspaces/{ws}/documents",
            post(api::add_documents).get(api::list_documents),
        )
        .route("/api/workspaces/{ws}/members", get(api::list_members))
        .route("/api/workspaces/{ws}/people", get(api::list_people))
        .route(
            "/api/workspaces/{ws}/members/{key}",
            delete(api::remove_member),
        )
        .route(
            "/api/workspaces/{ws}/invites",
            post(invites::create_invite).get(invites::list_invites),
        )
        .route(
            "/api/workspaces/{ws}/invites/{invite}",
            delete(invites::revoke_invite),
        )
        .route(
            "/api/workspaces/{ws}/shares",
            post(api::share).delete(api::unshare),
        )
        .route("/api/workspaces/{ws}/audit", get(api::audit))
        .route("/api/invites/redeem", post(invites::redeem))
        .route(
            "/api/workspaces/{ws}/forms",
            post(forms::admin::create).get(forms::admin::list),
        )
        .route("/api/workspaces/{ws}/forms/{form}", get(forms::admin::show))
        .route(
            "/api/workspaces/{ws}/forms/{form}/close",
            post(forms::admin::close),
        )
        .route(
            "/forms/{form}",
            get(forms::public::show).post(forms::public::submit),
        )
        .route(
            "/api/workspaces/{ws}/automations",
            get(automations::api::show),
        )
        .with_state(state)
}
