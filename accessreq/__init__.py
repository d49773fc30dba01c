"""The access domain: catalog, policies, requests, grants, campaigns, service accounts."""
