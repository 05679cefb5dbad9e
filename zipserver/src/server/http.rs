//! The zipserver's HTTP side on `listening_ports`: `/stat` (HTML for people,
//! `?html=0` for JSON) and `/metrics` (Prometheus text).

use super::service::Service;
use super::stats::StatSnapshot;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use prometheus::{Encoder, Registry, TextEncoder};
use serde::Deserialize;
use std::fmt::Write as _;
use std::sync::Arc;

pub struct HttpState {
    pub service: Arc<Service>,
    pub registry: Registry,
    pub unix_socket: String,
}

impl HttpState {
    fn snapshot(&self) -> StatSnapshot {
        let shape = &self.service.shape;
        let mut snap = self.service.stats.snapshot(
            shape.num_threads,
            shape.memory_budget,
            self.unix_socket.clone(),
        );
        snap.ring_in_flight = self.service.ring_blocks_in_flight();
        snap
    }
}

pub fn router(state: Arc<HttpState>) -> Router {
    Router::new()
        .route("/stat", get(stat))
        .route("/metrics", get(metrics))
        .fallback(|| async { (StatusCode::NOT_FOUND, "no such endpoint\n") })
        .with_state(state)
}

#[derive(Deserialize)]
struct StatQuery {
    html: Option<String>,
}

async fn stat(State(s): State<Arc<HttpState>>, Query(q): Query<StatQuery>) -> Response {
    let snap = s.snapshot();
    if q.html.as_deref() == Some("0") {
        return Json(snap).into_response();
    }
    Html(render(&snap)).into_response()
}

async fn metrics(State(s): State<Arc<HttpState>>) -> Response {
    let mut buf = Vec::new();
    match TextEncoder::new().encode(&s.registry.gather(), &mut buf) {
        Ok(()) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], buf).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn render(s: &StatSnapshot) -> String {
    let mut h = String::from(
        "<!doctype html><html><head><meta charset=utf-8><title>zipserver</title></head><body>",
    );
    let _ = write!(
        h,
        "<h1>zipserver pid {}</h1><table border=1>\
         <tr><th>threads</th><td>{}</td></tr>\
         <tr><th>socket</th><td>{}</td></tr>\
         <tr><th>connections</th><td>{}</td></tr>\
         <tr><th>queue depth</th><td>{}</td></tr>\
         <tr><th>waiting bytes</th><td>{}</td></tr>\
         <tr><th>working bytes</th><td>{}</td></tr>\
         <tr><th>budget in use</th><td>{} of {} (most {})</td></tr>\
         <tr><th>rings</th><td>{} ({} blocks in flight)</td></tr>\
         <tr><th>blocks</th><td>{} ({} through rings, {} wake-ups)</td></tr>\
         <tr><th>bytes in</th><td>{}</td></tr>\
         <tr><th>bytes out</th><td>{}</td></tr>\
         <tr><th>ratio</th><td>{:.3}</td></tr>\
         <tr><th>errors</th><td>{}</td></tr></table>",
        s.pid,
        s.num_threads,
        escape(&s.unix_socket),
        s.connections,
        s.queue_depth,
        s.waiting_bytes,
        s.working_bytes,
        s.budget_bytes,
        s.memory_budget,
        s.budget_max_bytes,
        s.rings,
        s.ring_in_flight,
        s.requests,
        s.ring_requests,
        s.wakeups,
        s.bytes_in,
        s.bytes_out,
        s.ratio,
        s.errors
    );
    h.push_str("<h2>clients</h2><table border=1><tr><th>client</th><th>blocks</th><th>bytes in</th><th>bytes out</th></tr>");
    for (name, c) in &s.clients {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(name),
            c.requests,
            c.bytes_in,
            c.bytes_out
        );
    }
    h.push_str("</table><p><a href=\"/stat?html=0\">JSON</a> <a href=\"/metrics\">metrics</a></p></body></html>");
    h
}
