//! Serialization in the strict form RFC 8866 §5 prescribes: CRLF line ends
//! and the fixed line order `v o s i u e p c b t r z k a m`, then per media
//! section `m i c b k a`, whatever order the lines were parsed in.

use std::fmt::{self, Write};

use super::model::{MediaDescription, OtherLine, SessionDescription};

/// Session-level letters of kept-verbatim lines that come before `c=`.
const BEFORE_CONNECTION: [char; 4] = ['i', 'u', 'e', 'p'];
/// Session-level letters of kept-verbatim lines that follow the `t=` lines.
const AFTER_TIMING: [char; 3] = ['r', 'z', 'k'];

fn lines_of(
    f: &mut fmt::Formatter<'_>,
    lines: &[OtherLine],
    pick: impl Fn(char) -> bool,
) -> fmt::Result {
    for l in lines.iter().filter(|l| pick(l.kind)) {
        write!(f, "{}={}\r\n", l.kind, l.value)?;
    }
    Ok(())
}

impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v={}\r\n", self.version)?;
        match &self.origin {
            Some(o) => write!(
                f,
                "o={} {} {} {} {} {}\r\n",
                o.username, o.session_id, o.session_version, o.net_type, o.addr_type, o.address
            )?,
            // Only reachable for a parsed description that lacked `o=`; the
            // line is mandatory, so write RFC 8866 §5.2's anonymous form.
            None => f.write_str("o=- 0 0 IN IP4 0.0.0.0\r\n")?,
        }
        let name = self.session_name.as_deref().unwrap_or("-");
        write!(f, "s={}\r\n", if name.is_empty() { "-" } else { name })?;
        for kind in BEFORE_CONNECTION {
            lines_of(f, &self.other_lines, |k| k == kind)?;
        }
        if let Some(c) = &self.connection {
            write!(f, "c={} {} {}\r\n", c.net_type, c.addr_type, c.address)?;
        }
        for b in &self.bandwidths {
            write!(f, "b={}:{}\r\n", b.bw_type, b.bandwidth)?;
        }
        if self.timings.is_empty() {
            f.write_str("t=0 0\r\n")?;
        }
        for t in &self.timings {
            write!(f, "t={} {}\r\n", t.start, t.stop)?;
        }
        for kind in AFTER_TIMING {
            lines_of(f, &self.other_lines, |k| k == kind)?;
        }
        // Unknown letters have no defined place; just before `a=` keeps them
        // at session level when the description is read back.
        lines_of(f, &self.other_lines, |k| {
            !BEFORE_CONNECTION.contains(&k) && !AFTER_TIMING.contains(&k)
        })?;
        for a in &self.attributes {
            write_attribute(f, &a.name, a.value.as_deref())?;
        }
        for m in &self.media {
            write!(f, "{m}")?;
        }
        Ok(())
    }
}

fn write_attribute(f: &mut fmt::Formatter<'_>, name: &str, value: Option<&str>) -> fmt::Result {
    match value {
        Some(v) => write!(f, "a={name}:{v}\r\n"),
        None => write!(f, "a={name}\r\n"),
    }
}

impl fmt::Display for MediaDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m={} {}", self.media, self.port)?;
        if let Some(n) = self.port_count {
            write!(f, "/{n}")?;
        }
        write!(f, " {}", self.protocol)?;
        for fmt in &self.formats {
            f.write_char(' ')?;
            f.write_str(fmt)?;
        }
        f.write_str("\r\n")?;
        lines_of(f, &self.other_lines, |k| k == 'i')?;
        if let Some(c) = &self.connection {
            write!(f, "c={} {} {}\r\n", c.net_type, c.addr_type, c.address)?;
        }
        for b in &self.bandwidths {
            write!(f, "b={}:{}\r\n", b.bw_type, b.bandwidth)?;
        }
        lines_of(f, &self.other_lines, |k| k != 'i')?;
        for a in &self.attributes {
            write_attribute(f, &a.name, a.value.as_deref())?;
        }
        Ok(())
    }
}
