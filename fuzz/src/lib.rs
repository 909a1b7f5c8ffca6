//! Properties the fuzz targets check on what tidings produces.

/// Elements and attributes the collector's sanitiser may let through
/// (`src/collect/sanitize.rs`), plus the `rel` it adds to links.
const ALLOWED_TAGS: &[&str] = &[
    "a", "abbr", "b", "blockquote", "br", "cite", "code", "del", "em", "h3", "h4", "i", "ins", "li", "ol", "p",
    "pre", "q", "s", "small", "strong", "sub", "sup", "u", "ul",
];

fn allowed_attribute(tag: &str, attribute: &str) -> bool {
    matches!(
        (tag, attribute),
        ("a", "href") | ("a", "title") | ("a", "rel") | ("abbr", "title")
    )
}

/// Walks serialised HTML (as html5ever writes it: text with `<` escaped,
/// attributes always `name="value"`) and panics on anything that could run
/// script or load a resource: an element or attribute outside the allow
/// list (so no `<script>`, no `on…` handler, no `style`), or a link whose
/// scheme is not http, https or mailto (so no `javascript:` or `data:`).
pub fn assert_safe_html(html: &str) {
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        rest = &rest[open + 1..];
        let closing = rest.starts_with('/');
        if closing {
            rest = &rest[1..];
        }
        let name_end = rest
            .find(|c: char| c.is_ascii_whitespace() || c == '>' || c == '/')
            .unwrap_or_else(|| panic!("unterminated tag in {html:?}"));
        let tag = &rest[..name_end];
        assert!(ALLOWED_TAGS.contains(&tag), "element <{tag}> survived sanitising: {html:?}");
        rest = &rest[name_end..];
        loop {
            rest = rest.trim_start();
            if let Some(after) = rest.strip_prefix('>') {
                rest = after;
                break;
            }
            if let Some(after) = rest.strip_prefix("/>") {
                rest = after;
                break;
            }
            assert!(!closing, "attributes on a closing tag: {html:?}");
            let eq = rest
                .find('=')
                .unwrap_or_else(|| panic!("attribute without a value in {html:?}"));
            let attribute = rest[..eq].trim();
            assert!(
                allowed_attribute(tag, attribute),
                "attribute {attribute:?} on <{tag}> survived sanitising: {html:?}"
            );
            rest = rest[eq + 1..]
                .strip_prefix('"')
                .unwrap_or_else(|| panic!("unquoted attribute value in {html:?}"));
            let close = rest
                .find('"')
                .unwrap_or_else(|| panic!("unterminated attribute value in {html:?}"));
            let value = rest[..close].replace("&amp;", "&");
            rest = &rest[close + 1..];
            if attribute == "href" {
                let lower = value.trim_start().to_ascii_lowercase();
                assert!(
                    lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("mailto:"),
                    "link with scheme outside http/https/mailto: {value:?} in {html:?}"
                );
            }
        }
    }
}

/// A line of text meant for a subject, a heading or a header: no CR, LF or
/// other control character may reach it.
pub fn assert_one_line(what: &str, text: &str) {
    assert!(
        !text.chars().any(char::is_control),
        "{what} contains a control character: {text:?}"
    );
}

std::thread_local! {
    static LAST_PANIC: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Replaces libFuzzer's abort-on-any-panic hook with one that only
/// remembers the message, for code that catches panics on purpose.
pub fn quiet_caught_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            LAST_PANIC.with(|p| *p.borrow_mut() = info.to_string());
        }));
    });
}

/// A panic reached the target: print it and abort, so libFuzzer saves the
/// input as a crash.
pub fn abort_with(_panic: Box<dyn std::any::Any + Send>) -> ! {
    LAST_PANIC.with(|p| eprintln!("panic escaped tidings: {}", p.borrow()));
    std::process::abort()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_the_sanitiser_writes() {
        assert_safe_html(r#"<p>A &lt;b&gt; <a href="https://x.example/?a=1&amp;b=2" rel="noopener noreferrer">x > y</a></p>"#);
    }

    #[test]
    #[should_panic(expected = "scheme")]
    fn rejects_javascript_links() {
        assert_safe_html(r#"<a href="javascript:alert(1)">x</a>"#);
    }

    #[test]
    #[should_panic(expected = "onclick")]
    fn rejects_handlers() {
        assert_safe_html(r#"<b onclick="x()">x</b>"#);
    }

    #[test]
    #[should_panic(expected = "<script>")]
    fn rejects_script() {
        assert_safe_html("<script>x()</script>");
    }
}
