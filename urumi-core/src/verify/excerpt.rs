//! Turning what a store answered into a step's `detail`: one line, at most
//! [`MAX_DETAIL`] characters; a WordPress REST error becomes `code: message`, an HTML page
//! becomes its visible text (never the markup).

use serde::Deserialize;

/// The longest `detail` a step carries, in characters.
pub const MAX_DETAIL: usize = 300;

/// A WordPress REST error body: `{"code","message","data":{"status"}}`.
#[derive(Deserialize)]
struct WpError {
    code: String,
    #[serde(default)]
    message: String,
}

/// The short description of an answer's body, or `None` for an empty one.
pub(crate) fn body_detail(body: &[u8]) -> Option<String> {
    if let Ok(err) = serde_json::from_slice::<WpError>(body) {
        let message = html_text(&err.message);
        return Some(if message.is_empty() {
            one_line(&err.code)
        } else {
            one_line(&format!("{}: {}", err.code, message))
        });
    }
    let text = String::from_utf8_lossy(body);
    let text = if text.contains('<') {
        html_text(&text)
    } else {
        text.into_owned()
    };
    let line = one_line(&text);
    (!line.is_empty()).then_some(line)
}

/// The WordPress REST error `code` of a body, when it is one.
pub(crate) fn wp_error_code(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<WpError>(body).ok().map(|e| e.code)
}

/// `text` on one line (runs of whitespace become one space), cut to [`MAX_DETAIL`]
/// characters with an ellipsis.
pub(crate) fn one_line(text: &str) -> String {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() <= MAX_DETAIL {
        return collapsed;
    }
    let mut cut: String = collapsed.chars().take(MAX_DETAIL - 1).collect();
    cut.push('…');
    cut
}

/// The visible text of an HTML fragment or page: tags, comments, `<script>` and `<style>`
/// contents dropped, the few entities WordPress emits in titles decoded.
pub(crate) fn html_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len().min(4096));
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        out.push(' ');
        let tag = &rest[open..];
        let lower: String = tag.chars().take(8).collect::<String>().to_ascii_lowercase();
        let skip_to = if tag.starts_with("<!--") {
            tag.find("-->").map(|i| i + 3)
        } else if lower.starts_with("<script") || lower.starts_with("<style") {
            let close = if lower.starts_with("<script") {
                "</script"
            } else {
                "</style"
            };
            find_ascii_ci(tag, close).and_then(|i| tag[i..].find('>').map(|j| i + j + 1))
        } else {
            tag.find('>').map(|i| i + 1)
        };
        match skip_to {
            Some(n) => rest = &tag[n..],
            None => {
                rest = "";
                break;
            }
        }
    }
    out.push_str(rest);
    decode_entities(&out)
}

fn find_ascii_ci(haystack: &str, needle: &str) -> Option<usize> {
    let h = haystack.as_bytes();
    let n = needle.as_bytes();
    h.windows(n.len()).position(|w| w.eq_ignore_ascii_case(n))
}

fn decode_entities(text: &str) -> String {
    const ENTITIES: [(&str, &str); 10] = [
        ("&amp;", "&"),
        ("&lt;", "<"),
        ("&gt;", ">"),
        ("&quot;", "\""),
        ("&#039;", "'"),
        ("&#8217;", "’"),
        ("&rsaquo;", "›"),
        ("&ndash;", "–"),
        ("&hellip;", "…"),
        ("&nbsp;", " "),
    ];
    let mut out = text.to_owned();
    for (entity, ch) in ENTITIES {
        if out.contains(entity) {
            out = out.replace(entity, ch);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wp_rest_error_becomes_code_and_message() {
        let body = br#"{"code":"woocommerce_rest_missing_nonce","message":"Missing the <code>Nonce</code> header.","data":{"status":401}}"#;
        assert_eq!(
            body_detail(body).as_deref(),
            Some("woocommerce_rest_missing_nonce: Missing the Nonce header.")
        );
        assert_eq!(
            wp_error_code(body).as_deref(),
            Some("woocommerce_rest_missing_nonce")
        );
    }

    #[test]
    fn an_html_page_becomes_its_text_on_one_line() {
        let page = "<!DOCTYPE html>\n<html><head><title>WordPress &rsaquo; Error</title>\n\
            <style>body { color: red }</style><script>var x = '<p>';</script></head>\n\
            <body><!-- c --><p>There has been a <b>critical error</b>\n on this website.</p></body></html>";
        assert_eq!(
            body_detail(page.as_bytes()).as_deref(),
            Some("WordPress › Error There has been a critical error on this website.")
        );
    }

    #[test]
    fn long_text_is_cut_to_the_limit_on_a_char_boundary() {
        let long = "é".repeat(1000);
        let line = one_line(&long);
        assert_eq!(line.chars().count(), MAX_DETAIL);
        assert!(line.ends_with('…'));
    }

    #[test]
    fn an_empty_body_has_no_detail() {
        assert_eq!(body_detail(b"  \n"), None);
        assert_eq!(body_detail(b"<p></p>"), None);
    }
}
