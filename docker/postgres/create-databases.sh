#!/bin/bash
# Create Noticeboard's own database and role next to Airflow's metadata database.
# The postgres image runs this once, when its data volume is empty.
set -euo pipefail

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    --set=nb_password="$NOTICEBOARD_DB_PASSWORD" <<'SQL'
CREATE ROLE noticeboard LOGIN PASSWORD :'nb_password';
CREATE DATABASE noticeboard OWNER noticeboard;
SQL
