# Sourced by bench/send/run and bench/drills/lib.sh: the one-edition config
# both use — a 10-story feed file, one audience, edition "weekly" — so the
# benchmark and the drills exercise the same setup.
#
#   one_edition_config NAME DATABASE_URL SMTP_URL DELIVERY_KEYS FEED_FILE > tidings.toml
#
# NAME titles the site, the sender and the edition ("Weekly NAME");
# DELIVERY_KEYS are the lines of the [delivery] table; the templates are
# the repository's.
one_edition_config() {
    local name=$1 database=$2 smtp=$3 delivery=$4 feed=$5
    local root
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    cat <<TOML
[site]
title = "$name"
base_url = "https://news.example.com"
from = "$name <${name,,}@example.com>"
templates = "$root/templates"

[database]
url = "$database"

[smtp]
url = "$smtp"
starttls = "never"

[delivery]
$delivery

[[sources]]
name = "$name Feed"
url = "$feed"
tags = ["security"]

[audiences.security]
title = "Security"
weights = { security = 1.0 }

[[editions]]
name = "weekly"
title = "Weekly $name"
audience = "security"
schedule = "0 0 8 * * Mon"
max_stories = 10
max_per_source = 10
TOML
}

# The URL of database NAME on the server of $PG (a URL whose query, such as
# `?host=/var/run/postgresql` for the Unix socket, is kept).
pg_database_url() {
    local base=${PG%%\?*}
    echo "${base%/*}/$1${PG#"$base"}"
}
