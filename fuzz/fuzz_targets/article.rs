//! Page bytes → article text, as `full_text` sources extract it: whatever
//! the page, the text is bounded, one paragraph per blank-line group, and
//! free of control and text-direction characters.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidings::collect::article::{MAX_CONTENT_CHARS, extract};
use url::Url;

fuzz_target!(|data: &[u8]| {
    let url = Url::parse("https://news.example.org/2026/story").expect("constant URL");
    let Ok(text) = extract(data, None, &url) else {
        return;
    };
    assert!(text.chars().count() <= MAX_CONTENT_CHARS + 1, "{} characters", text.chars().count());
    assert!(!text.starts_with(char::is_whitespace) && !text.ends_with(char::is_whitespace));
    for c in text.chars() {
        assert!(c == '\n' || !c.is_control(), "control character {:?}", c);
        assert!(!matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'), "bidi {:?}", c);
    }
    assert!(!text.contains("\n\n\n"), "paragraphs are separated by one blank line");
    assert!(!text.contains("TIDINGSx"), "markers are defused");
});
