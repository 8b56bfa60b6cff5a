// Package coffer is the domain of the Coffer personal-banking backend: money
// types, users, the double-entry ledger's rules, the error type and the Store
// interface that the database adapters implement. It imports no database and
// no HTTP code; the sqlite, postgres and httpapi packages depend on it.
package coffer
