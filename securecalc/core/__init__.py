"""The pure domain of securecalc: schema, filters, data, analyses, configuration, results.

Nothing under ``securecalc.core`` imports grpc, mpyc or tenseal.
"""
