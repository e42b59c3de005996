"""Watch: alerts for consenting people over scoped crawls, without a face database.

An admin enrols a person (`enrol`: a template and the recorded basis, never the photo).
A watch round (`run`) crawls a declared scope into a fresh job folder, compares every adult
face in it with the enrolled templates (`scan`), keeps only the matches (an alert row, a
ledger entry and the matched captures copied into an evidence WARC: `evidence`), deletes
the job folder, and delivers the alerts by webhook and e-mail (`alerts`, `delivery`).
`takedown` turns an alert into a letter to the site.
"""
