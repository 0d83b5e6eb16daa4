#!/bin/sh
# A pg_dump of DATABASE_URL into DIR (custom format, restore with pg_restore, docs/deploy.md),
# keeping the newest PARLEY_BACKUP_KEEP (default 14): deploy/backup.sh DIR
set -eu
dir="$1"
keep="${PARLEY_BACKUP_KEEP:-14}"
name="parley-$(date -u +%Y%m%dT%H%M%SZ).dump"
pg_dump --format=custom --no-owner --dbname="$DATABASE_URL" --file="$dir/$name.partial"
mv "$dir/$name.partial" "$dir/$name"
ls -1t "$dir"/parley-*.dump | tail -n +"$((keep + 1))" | while read -r old; do rm -f "$old"; done
echo "backup: $dir/$name"
