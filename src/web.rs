//! The web client: static files from `web/`, embedded in the binary at build
//! time and served from `/`, so the server needs no files beside it.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::AppState;

/// Content-Security-Policy of the client's documents and files. Scripts and
/// styles come only from this origin and never inline, and the page talks
/// only to this origin. In CSP Level 3, `connect-src 'self'` also admits
/// `ws:` and `wss:` to the same host and port, which the client's WebSocket
/// uses.
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; \
frame-ancestors 'none'";

/// One embedded file: its URL path, media type and contents.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file of the client. `index.html` is served at `/`.
const ASSETS: &[Asset] = &[
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../web/index.html"),
    },
    Asset {
        path: "/style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../web/style.css"),
    },
    Asset {
        path: "/icon.svg",
        content_type: "image/svg+xml",
        body: include_str!("../web/icon.svg"),
    },
    Asset {
        path: "/app.js",
        content_type: JS,
        body: include_str!("../web/app.js"),
    },
    Asset {
        path: "/api.js",
        content_type: JS,
        body: include_str!("../web/api.js"),
    },
    Asset {
        path: "/realtime.js",
        content_type: JS,
        body: include_str!("../web/realtime.js"),
    },
    Asset {
        path: "/dom.js",
        content_type: JS,
        body: include_str!("../web/dom.js"),
    },
    Asset {
        path: "/auth-view.js",
        content_type: JS,
        body: include_str!("../web/auth-view.js"),
    },
    Asset {
        path: "/chat-list.js",
        content_type: JS,
        body: include_str!("../web/chat-list.js"),
    },
    Asset {
        path: "/new-chat.js",
        content_type: JS,
        body: include_str!("../web/new-chat.js"),
    },
    Asset {
        path: "/conversation.js",
        content_type: JS,
        body: include_str!("../web/conversation.js"),
    },
];

/// Routes that serve the client's files.
pub fn router() -> Router<AppState> {
    ASSETS.iter().fold(Router::new(), |router, asset| {
        router.route(asset.path, get(move || async move { serve(asset) }))
    })
}

fn serve(asset: &'static Asset) -> Response {
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        ),
        // The files change with every release, so browsers must revalidate.
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(PAGE_CSP),
        ),
    ];
    (StatusCode::OK, headers, asset.body).into_response()
}
