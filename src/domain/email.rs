//! Email addresses that are known to be valid: the only way to get an
//! [`EmailAddress`] is [`EmailAddress::parse`].

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid email address: {0}")]
pub struct EmailError(String);

/// An address that can be delivered on the public internet, trimmed and
/// lower-cased: a dot-atom local part (no quoted strings) at a domain name
/// with a dot (no IP literals, no `localhost`). (RFC 5321 lets a server
/// treat the local part as case-sensitive; none that matters does, and
/// "Ann@" and "ann@" being two subscribers would mail one person twice.)
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(EmailError("it is empty".into()));
        }
        if s.len() > 254 {
            return Err(EmailError("it is longer than 254 characters".into()));
        }
        if s.chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>' || c == ',')
        {
            return Err(EmailError(
                "it contains spaces, commas, angle brackets or control characters".into(),
            ));
        }
        if s.contains('"') {
            return Err(EmailError("quoted local parts cannot be used".into()));
        }
        let addr = lettre::Address::from_str(s).map_err(|e| EmailError(e.to_string()))?;
        let domain = addr.domain().to_lowercase();
        let user = addr.user().to_lowercase();
        if domain.starts_with('[') {
            return Err(EmailError(format!("\"{domain}\" is an IP address, not a domain")));
        }
        if !domain.contains('.') {
            return Err(EmailError(format!("domain \"{domain}\" has no dot")));
        }
        let labels_ok = domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
        let tld_ok = domain
            .rsplit('.')
            .next()
            .is_some_and(|tld| !tld.chars().all(|c| c.is_ascii_digit()));
        if !labels_ok || !tld_ok {
            return Err(EmailError(format!("\"{domain}\" is not a domain name")));
        }
        if user.starts_with('.') || user.ends_with('.') || user.contains("..") {
            return Err(EmailError("the part before @ has a misplaced dot".into()));
        }
        Ok(EmailAddress(format!("{user}@{domain}")))
    }

    /// An address read back from the store: it passed [`EmailAddress::parse`]
    /// when it came in, under the rules of that day, and stays deliverable
    /// data even where today's rules would refuse it as input.
    pub(crate) fn from_store(stored: String) -> Self {
        EmailAddress(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An address with an optional display name: `Weekly AI Recap <recap@example.com>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub name: Option<String>,
    pub email: EmailAddress,
}

impl Mailbox {
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let raw = raw.trim();
        if let (Some(open), true) = (raw.rfind('<'), raw.ends_with('>')) {
            let name = raw[..open].trim().trim_matches('"').trim();
            let email = EmailAddress::parse(&raw[open + 1..raw.len() - 1])?;
            if name.chars().any(char::is_control) {
                return Err(EmailError("the name contains control characters".into()));
            }
            let name = (!name.is_empty()).then(|| name.to_string());
            return Ok(Mailbox { name, email });
        }
        Ok(Mailbox {
            name: None,
            email: EmailAddress::parse(raw)?,
        })
    }
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "\"{}\" <{}>", n.replace('"', "'"), self.email),
            None => write!(f, "{}", self.email),
        }
    }
}

/// `[delivery] return_path`: the envelope sender of list messages. Each
/// message is sent from `local+TOKEN@domain` (VERP), the token naming its
/// delivery, so a bounce says which delivery it is about whatever its body
/// holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnPath {
    local: String,
    domain: String,
}

impl ReturnPath {
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let address = EmailAddress::parse(raw)?;
        let (local, domain) = address.as_str().split_once('@').unwrap_or_default();
        if local.contains('+') {
            return Err(EmailError(
                "the part before @ must not hold a \"+\": tidings adds \"+TOKEN\" itself".into(),
            ));
        }
        if local.len() + 1 + 40 > 64 {
            return Err(EmailError(
                "the part before @ is too long to carry a token (64 characters at most)".into(),
            ));
        }
        Ok(ReturnPath {
            local: local.to_string(),
            domain: domain.to_string(),
        })
    }

    /// The envelope sender of the delivery that `token` names.
    pub fn for_token(&self, token: &str) -> String {
        format!("{}+{token}@{}", self.local, self.domain)
    }

    /// The token of a VERP address of this return path, whatever its case.
    pub fn token_of(&self, address: &str) -> Option<String> {
        let address = address
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_ascii_lowercase();
        let (local, domain) = address.rsplit_once('@')?;
        let token = local.strip_prefix(self.local.as_str())?.strip_prefix('+')?;
        (domain == self.domain && !token.is_empty()).then(|| token.to_string())
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }
}

impl fmt::Display for ReturnPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_paths_carry_and_give_back_tokens() {
        let rp = ReturnPath::parse("Bounces@Example.com").expect("valid");
        assert_eq!(rp.to_string(), "bounces@example.com");
        assert_eq!(rp.for_token("12-ab"), "bounces+12-ab@example.com");
        assert_eq!(rp.token_of("<BOUNCES+12-AB@example.COM>").as_deref(), Some("12-ab"));
        assert_eq!(rp.token_of("bounces@example.com"), None);
        assert_eq!(rp.token_of("bounces+12-ab@example.org"), None);
        assert_eq!(rp.token_of("bouncesx+12-ab@example.com"), None);
        assert!(ReturnPath::parse("bounces+x@example.com").is_err());
        assert!(ReturnPath::parse("not an address").is_err());
    }

    #[test]
    fn valid_addresses_are_normalised() {
        let a = EmailAddress::parse("  Jane.Doe+news@Example.COM ").expect("valid");
        assert_eq!(a.as_str(), "jane.doe+news@example.com");
        assert_eq!(a.domain(), "example.com");
    }

    #[test]
    fn invalid_addresses_are_refused() {
        for bad in [
            "",
            "plainaddress",
            "@example.com",
            "jane@",
            "jane doe@example.com",
            "jane@example.com\r\nBcc: x@y.z",
            "a@b",
            "Jane <jane@example.com>",
            "a,b@example.com",
            "x@[127.0.0.1]",
            "x@[IPv6:::1]",
            "\"a\\\"b\"@example.com",
            "\"john doe\"@example.com",
            "root@localhost",
            "a@127.0.0.1",
            "a@exa_mple.com",
            "a@-example.com",
            "a@example..com",
            ".a@example.com",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn mailbox_with_and_without_name() {
        let m = Mailbox::parse("Weekly AI Recap <recap@example.com>").expect("valid");
        assert_eq!(m.name.as_deref(), Some("Weekly AI Recap"));
        assert_eq!(m.email.as_str(), "recap@example.com");
        let m = Mailbox::parse("\"Ada, L.\" <ada@example.org>").expect("valid");
        assert_eq!(m.name.as_deref(), Some("Ada, L."));
        let m = Mailbox::parse("bob@example.org").expect("valid");
        assert_eq!(m.name, None);
        assert!(Mailbox::parse("Bob <bob>").is_err());
    }
}
