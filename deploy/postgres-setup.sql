-- One-off PostgreSQL setup for a shared scopegate registry (run as a superuser).
-- Firm databases, when kept on PostgreSQL, are separate databases (one per firm)
-- created by `scopegate firm add --data-url postgres://.../firm_x`; the scopegate
-- role needs CREATEDB for that, or create them beforehand.
CREATE ROLE scopegate LOGIN PASSWORD 'change-me' CREATEDB;
CREATE DATABASE scopegate OWNER scopegate;
-- Migrations run with `scopegate migrate` (also done by the systemd unit before start).
