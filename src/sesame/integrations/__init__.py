"""Where ARNs lead: clients for AWS-compatible services (through botocore) and Sesame's own stand-ins."""
