"""Bulk jobs: CreateImportJob (the suppression list; contact lists through the same pipeline) and
CreateExportJob (message insights, VDM metrics), run in the background with leases.

    service.py   the API's side: checks, job rows, answers in the sesv2 shapes
    store.py     the bulk_jobs table: create, claim with leases, guarded progress, finish, cancel
    runner.py    the background loop of each process
    imports.py   an import: the source streamed, parsed on a thread, written a batch per transaction
    records.py   CSV and JSON-lines records with byte offsets (where a resumed job starts)
    sinks.py     the ImportSink protocol: one class per ImportDestinationType
    suppression.py  the SUPPRESSION_LIST sink
    exports.py   an export: MESSAGE_INSIGHTS and METRICS_DATA rows to a CSV or JSON-lines file
    filters.py   MessageInsightsFilters with their wildcards
    links.py     URLs of the files jobs write (S3 pre-signed, or signed URLs of this server)
"""
