"""Storage ports and their adapters: S3 objects and the DynamoDB profile table.

Only this package and `segflow.events.bus` touch the network; everything else takes plain data.
"""
