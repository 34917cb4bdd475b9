import os

from robustattr.cli import main

if "TORCHELASTIC_RUN_ID" in os.environ:  # under torchrun: an unexpected exception's traceback goes into
    from torch.distributed.elastic.multiprocessing.errors import record  # torchrun's failure summary

    main = record(main)

raise SystemExit(main())
