//! Splitting a shell line into words (ZooKeeperMain.parseCommand) and parsing a command's options
//! the way Apache commons-cli's DefaultParser does for zkCli, with its exception texts.

/// ZooKeeperMain's `\s*([^"']\S*|"[^"]*"|'[^']*')\s*` tokenizer, with surrounding quotes removed
/// from a token that is entirely quoted. An unmatched quote is skipped.
pub fn split_command(line: &str) -> Vec<String> {
    let chars: Vec<char> = line.chars().collect();
    let ws = |c: char| matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r');
    let n = chars.len();
    let mut out = Vec::new();
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j < n && ws(chars[j]) {
            j += 1;
        }
        if j == n {
            break;
        }
        let c = chars[j];
        let end = if c != '"' && c != '\'' {
            let mut k = j + 1;
            while k < n && !ws(chars[k]) {
                k += 1;
            }
            k
        } else {
            match chars[j + 1..].iter().position(|&x| x == c) {
                Some(q) => j + 1 + q + 1,
                None => {
                    // No match can start at the quote: the regex search moves past it.
                    i = j + 1;
                    continue;
                }
            }
        };
        let mut tok: String = chars[j..end].iter().collect();
        let tc: Vec<char> = tok.chars().collect();
        if tc.len() >= 2 && (tc[0] == '"' || tc[0] == '\'') && tc[tc.len() - 1] == tc[0] {
            tok = tc[1..tc.len() - 1].iter().collect();
        }
        out.push(tok);
        let mut k = end;
        while k < n && ws(chars[k]) {
            k += 1;
        }
        i = k;
    }
    out
}

/// One option of a command (`new Option(name, hasArg, description)`).
#[derive(Clone, Copy, Debug)]
pub struct OptSpec {
    pub name: &'static str,
    pub has_arg: bool,
    pub desc: &'static str,
}

pub const fn flag(name: &'static str, desc: &'static str) -> OptSpec {
    OptSpec { name, has_arg: false, desc }
}

pub const fn with_arg(name: &'static str, desc: &'static str) -> OptSpec {
    OptSpec { name, has_arg: true, desc }
}

/// A command's options, optionally all in one exclusive group (setquota/delquota).
#[derive(Clone, Copy, Debug)]
pub struct OptionsSpec {
    pub opts: &'static [OptSpec],
    /// The options form one OptionGroup (at most one may be given).
    pub grouped: bool,
    /// The group is required.
    pub required: bool,
}

impl OptionsSpec {
    pub const fn plain(opts: &'static [OptSpec]) -> OptionsSpec {
        OptionsSpec { opts, grouped: false, required: false }
    }
    fn get(&self, name: &str) -> Option<&'static OptSpec> {
        self.opts.iter().find(|o| o.name == name)
    }
}

/// The parse result: options in the order seen (with their value) and the other words.
#[derive(Clone, Debug, Default)]
pub struct CommandLine {
    opts: Vec<(&'static str, Option<String>)>,
    pub args: Vec<String>,
}

impl CommandLine {
    pub fn has(&self, name: &str) -> bool {
        self.opts.iter().any(|(n, _)| *n == name)
    }
    /// The first value given for the option.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.opts.iter().find(|(n, v)| *n == name && v.is_some()).and_then(|(_, v)| v.as_deref())
    }
}

const PKG: &str = "org.apache.commons.cli.";

fn unrecognized(token: &str) -> String {
    format!("{PKG}UnrecognizedOptionException: Unrecognized option: {token}")
}

struct State<'a> {
    spec: &'a OptionsSpec,
    cl: CommandLine,
    /// The option waiting for its value.
    current: Option<&'static OptSpec>,
    selected: Option<&'static str>,
    skip: bool,
}

impl State<'_> {
    fn check_required_args(&self) -> Result<(), String> {
        if let Some(o) = self.current.filter(|o| o.has_arg) {
            return Err(format!("{PKG}MissingArgumentException: Missing argument for option: {}", o.name));
        }
        Ok(())
    }

    fn handle_option(&mut self, o: &'static OptSpec) -> Result<(), String> {
        self.check_required_args()?;
        if self.spec.grouped {
            match self.selected {
                Some(s) if s != o.name => {
                    return Err(format!(
                        "{PKG}AlreadySelectedException: The option '{}' was specified but an option from this \
                         group has already been selected: '{s}'",
                        o.name
                    ));
                }
                _ => self.selected = Some(o.name),
            }
        }
        self.cl.opts.push((o.name, None));
        self.current = if o.has_arg { Some(o) } else { None };
        Ok(())
    }

    fn add_value(&mut self, v: String) {
        if let Some(last) = self.cl.opts.last_mut().filter(|l| l.1.is_none()) {
            last.1 = Some(v);
        }
        self.current = None;
    }

    fn is_short_option(&self, token: &str) -> bool {
        if !token.starts_with('-') || token.len() == 1 {
            return false;
        }
        let name = match token.find('=') {
            Some(p) => &token[1..p],
            None => &token[1..],
        };
        if self.spec.get(name).is_some() {
            return true;
        }
        name.chars().next().is_some_and(|c| self.spec.get(&c.to_string()).is_some())
    }

    fn is_argument(&self, token: &str) -> bool {
        !self.is_short_option(token) || token.parse::<f64>().is_ok()
    }

    fn handle_unknown(&mut self, token: &str) -> Result<(), String> {
        if token.starts_with('-') && token.len() > 1 {
            return Err(unrecognized(token));
        }
        self.cl.args.push(token.to_string());
        Ok(())
    }

    fn handle_concatenated(&mut self, token: &str) -> Result<(), String> {
        let chars: Vec<char> = token.chars().collect();
        for i in 1..chars.len() {
            let ch = chars[i].to_string();
            let Some(o) = self.spec.get(&ch) else {
                return self.handle_unknown(token);
            };
            self.handle_option(o)?;
            if self.current.is_some() && chars.len() != i + 1 {
                let rest: String = chars[i + 1..].iter().collect();
                self.add_value(rest);
                break;
            }
        }
        Ok(())
    }

    fn handle_short(&mut self, token: &str) -> Result<(), String> {
        let t = &token[1..];
        match t.find('=') {
            None => {
                if let Some(o) = self.spec.get(t) {
                    self.handle_option(o)
                } else if t.chars().count() == 1 {
                    self.handle_unknown(token)
                } else {
                    self.handle_concatenated(token)
                }
            }
            Some(pos) => {
                let (name, value) = (&t[..pos], &t[pos + 1..]);
                if name.chars().count() == 1 {
                    match self.spec.get(name) {
                        Some(o) if o.has_arg => {
                            self.handle_option(o)?;
                            self.add_value(value.to_string());
                            Ok(())
                        }
                        _ => self.handle_unknown(token),
                    }
                } else {
                    // `-xy=z`: no long options here.
                    self.handle_unknown(token)
                }
            }
        }
    }

    fn handle_token(&mut self, token: &str) -> Result<(), String> {
        if self.skip {
            self.cl.args.push(token.to_string());
            return Ok(());
        }
        if self.current.is_some_and(|o| o.has_arg) && self.is_argument(token) {
            self.add_value(strip_quotes(token));
            return Ok(());
        }
        if token == "--" {
            self.skip = true;
        } else if token == "-" {
            self.cl.args.push(token.to_string());
        } else if token.starts_with("--") {
            self.handle_unknown(token)?;
        } else if token.starts_with('-') {
            self.handle_short(token)?;
        } else {
            self.handle_unknown(token)?;
        }
        if self.current.is_some_and(|o| !o.has_arg) {
            self.current = None;
        }
        Ok(())
    }
}

/// commons-cli's stripLeadingAndTrailingQuotes for an option value given as its own word.
fn strip_quotes(s: &str) -> String {
    if s.len() > 1 && s.starts_with('"') && s.ends_with('"') && !s[1..s.len() - 1].contains('"') {
        s[1..s.len() - 1].to_string()
    } else {
        s.to_string()
    }
}

/// Parses `tokens` (the command word included, which becomes `args[0]`). The error is the text
/// zkCli prints: the exception's class and message.
pub fn parse_options(spec: &OptionsSpec, tokens: &[String]) -> Result<CommandLine, String> {
    let mut st = State { spec, cl: CommandLine::default(), current: None, selected: None, skip: false };
    for t in tokens {
        st.handle_token(t)?;
    }
    st.check_required_args()?;
    if spec.grouped && spec.required && st.selected.is_none() {
        let names: Vec<String> = spec.opts.iter().map(|o| format!("-{} {}", o.name, o.desc)).collect();
        return Err(format!("{PKG}MissingOptionException: Missing required option: [{}]", names.join(", ")));
    }
    Ok(st.cl)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn splits_like_zookeeper_main() {
        assert_eq!(split_command("  create /x  hi "), v(&["create", "/x", "hi"]));
        assert_eq!(split_command("set /x \"a b\""), v(&["set", "/x", "a b"]));
        assert_eq!(split_command("set /x 'a b'"), v(&["set", "/x", "a b"]));
        assert_eq!(split_command("set /x 'ab'cd"), v(&["set", "/x", "ab", "cd"]));
        assert_eq!(split_command("set /x a\"b c\""), v(&["set", "/x", "a\"b", "c\""]));
        assert_eq!(split_command("set /x \"open"), v(&["set", "/x", "open"]));
        assert!(split_command("   ").is_empty());
    }

    const CREATE: OptionsSpec = OptionsSpec::plain(&[
        flag("e", "ephemeral"),
        flag("s", "sequential"),
        flag("c", "container"),
        with_arg("t", "ttl"),
    ]);
    const SETQUOTA: OptionsSpec = OptionsSpec {
        opts: &[
            with_arg("n", "num soft quota"),
            with_arg("b", "bytes soft quota"),
            with_arg("N", "num hard quota"),
            with_arg("B", "bytes hard quota"),
        ],
        grouped: true,
        required: true,
    };

    #[test]
    fn options_like_commons_cli() {
        let cl = parse_options(&CREATE, &v(&["create", "-se", "/x", "d"])).unwrap();
        assert!(cl.has("s") && cl.has("e"));
        assert_eq!(cl.args, v(&["create", "/x", "d"]));
        let cl = parse_options(&CREATE, &v(&["create", "-t5", "/x"])).unwrap();
        assert_eq!(cl.value("t"), Some("5"));
        let cl = parse_options(&CREATE, &v(&["create", "-t", "-5", "/x"])).unwrap();
        assert_eq!(cl.value("t"), Some("-5"));
        let cl = parse_options(&CREATE, &v(&["create", "/x", "--", "-e"])).unwrap();
        assert_eq!(cl.args, v(&["create", "/x", "-e"]));
        assert_eq!(
            parse_options(&CREATE, &v(&["create", "-x", "/x"])).unwrap_err(),
            "org.apache.commons.cli.UnrecognizedOptionException: Unrecognized option: -x"
        );
        assert_eq!(
            parse_options(&CREATE, &v(&["create", "--foo"])).unwrap_err(),
            "org.apache.commons.cli.UnrecognizedOptionException: Unrecognized option: --foo"
        );
        assert_eq!(
            parse_options(&CREATE, &v(&["create", "-t"])).unwrap_err(),
            "org.apache.commons.cli.MissingArgumentException: Missing argument for option: t"
        );
        assert_eq!(
            parse_options(&CREATE, &v(&["create", "-t", "-e"])).unwrap_err(),
            "org.apache.commons.cli.MissingArgumentException: Missing argument for option: t"
        );
        assert_eq!(
            parse_options(&SETQUOTA, &v(&["setquota", "/q"])).unwrap_err(),
            "org.apache.commons.cli.MissingOptionException: Missing required option: [-n num soft quota, \
             -b bytes soft quota, -N num hard quota, -B bytes hard quota]"
        );
        assert_eq!(
            parse_options(&SETQUOTA, &v(&["setquota", "-n", "1", "-b", "2", "/q"])).unwrap_err(),
            "org.apache.commons.cli.AlreadySelectedException: The option 'b' was specified but an option \
             from this group has already been selected: 'n'"
        );
    }
}
