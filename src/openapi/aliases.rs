//! Routes served by a handler that is described under another route: path
//! aliases, and one handler answering several methods. Each gets a copy of
//! the described operation, so the two can never drift apart.

use utoipa::Modify;
use utoipa::openapi::path::{HttpMethod, Operation, PathItem};

struct Alias {
    method: HttpMethod,
    path: &'static str,
    /// The described operation this route shares its handler with.
    of: (HttpMethod, &'static str),
    operation_id: &'static str,
    /// Replaces the copied description when the alias needs its own.
    description: Option<&'static str>,
}

const ALIASES: &[Alias] = &[
    Alias {
        method: HttpMethod::Get,
        path: "/api/auth/token",
        of: (HttpMethod::Post, "/api/auth/token"),
        operation_id: "token_get",
        description: None,
    },
    Alias {
        method: HttpMethod::Get,
        path: "/api/auth/keys",
        of: (HttpMethod::Get, "/.well-known/jwks.json"),
        operation_id: "auth_keys",
        description: Some("The same document as /.well-known/jwks.json."),
    },
    Alias {
        method: HttpMethod::Post,
        path: "/api/upload",
        of: (HttpMethod::Post, "/api/data"),
        operation_id: "upload_alias",
        description: Some("Alias of POST /api/data."),
    },
    Alias {
        method: HttpMethod::Patch,
        path: "/api/data",
        of: (HttpMethod::Put, "/api/data"),
        operation_id: "single_patch",
        description: Some("The Node demo's single PATCH."),
    },
    Alias {
        method: HttpMethod::Delete,
        path: "/api/data",
        of: (HttpMethod::Put, "/api/data"),
        operation_id: "single_delete",
        description: Some("The Node demo's single DELETE."),
    },
    Alias {
        method: HttpMethod::Get,
        path: "/api/attachments/download-url/{id}",
        of: (HttpMethod::Get, "/api/attachments/{id}/download-url"),
        operation_id: "download_url_alias",
        description: Some("Alias of GET /api/attachments/{id}/download-url."),
    },
];

pub struct Aliases;

impl Modify for Aliases {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let paths = &mut openapi.paths.paths;
        for alias in ALIASES {
            let (method, path) = &alias.of;
            let Some(described) = paths
                .get_mut(*path)
                .and_then(|item| slot(item, method).clone())
            else {
                // A test checks every route is described, so a missing
                // original shows there.
                continue;
            };
            let mut operation = described;
            operation.operation_id = Some(alias.operation_id.to_owned());
            if let Some(description) = alias.description {
                operation.description = Some(description.to_owned());
            }
            if matches!(alias.method, HttpMethod::Get) {
                // Described without a body: a GET's request is in its
                // query string.
                operation.request_body = None;
            }
            let item = paths.entry(alias.path.to_owned()).or_default();
            *slot(item, &alias.method) = Some(operation);
        }
    }
}

fn slot<'a>(item: &'a mut PathItem, method: &HttpMethod) -> &'a mut Option<Operation> {
    match method {
        HttpMethod::Get => &mut item.get,
        HttpMethod::Post => &mut item.post,
        HttpMethod::Put => &mut item.put,
        HttpMethod::Delete => &mut item.delete,
        HttpMethod::Options => &mut item.options,
        HttpMethod::Head => &mut item.head,
        HttpMethod::Patch => &mut item.patch,
        HttpMethod::Trace => &mut item.trace,
    }
}
