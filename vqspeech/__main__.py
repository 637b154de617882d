from vqspeech.cli import main

raise SystemExit(main())
