<resource schema="ammosaic">
  <!-- The mock 3-band mosaic of anomalymatch_astro's mining tests (see ../mosaic.py and
       .ci/dachs_setup.sh): 12 image tiles (SIAP 1 + ObsCore, hence SIAP 2 and TAP, with a
       datalink/SODA service for cutouts) and the table of its sources (TAP). -->
  <meta name="title">anomalymatch_astro mock mosaic</meta>
  <meta name="description">A simulated 0.3 x 0.3 deg field in three bands (g, r, i), cut
    into 2 x 2 overlapping tiles per band, with about 400 galaxies and 12 anomalies, and
    the table of its sources, for the mining tests of anomalymatch_astro.</meta>
  <meta name="creationDate">2026-11-30T00:00:00Z</meta>
  <meta name="subject">Galaxies</meta>
  <meta name="creator.name">anomalymatch_astro developers</meta>
  <meta name="shortName">ammosaic</meta>

  <table id="main" onDisk="True" mixin="//siap#pgs" adql="True">
    <meta name="_associatedDatalinkService">
      <meta name="serviceId">dl</meta>
      <meta name="idColumn">pub_did</meta>
    </meta>
    <mixin
      calibLevel="2"
      collectionName="'ammosaic'"
      targetName="object"
      facilityName="instId"
      instrumentName="instId"
      did="pub_did"
      >//obscore#publishSIAP</mixin>
    <column name="object" type="text" ucd="meta.id;src" tablehead="Object"
      description="Target of the image" verbLevel="10"/>
    <column name="pub_did" type="text" ucd="meta.ref.ivoid"
      tablehead="PubDID" description="Publisher dataset identifier" verbLevel="10"/>
  </table>

  <table id="sources" onDisk="True" adql="True" primary="source_id">
    <meta name="description">The sources placed in the mock mosaic (truth table).</meta>
    <column name="source_id" type="text" ucd="meta.id;meta.main" tablehead="ID"
      description="Source identifier" verbLevel="1"/>
    <column name="ra" type="double precision" unit="deg" ucd="pos.eq.ra;meta.main"
      tablehead="RA" description="ICRS right ascension" verbLevel="1"/>
    <column name="dec" type="double precision" unit="deg" ucd="pos.eq.dec;meta.main"
      tablehead="Dec" description="ICRS declination" verbLevel="1"/>
    <column name="mag_r" type="real" unit="mag" ucd="phot.mag;em.opt.R"
      tablehead="r" description="Total r-band AB magnitude of the galaxy" verbLevel="1"/>
    <column name="kind" type="text" ucd="src.class"
      tablehead="Kind" description="galaxy, odd_colour, ring or arc" verbLevel="1"/>
    <column name="is_anomaly" type="smallint" ucd="meta.code"
      tablehead="Anomaly?" description="1 for the planted anomalies, 0 for normal galaxies"
      verbLevel="1" required="True"/>
  </table>

  <data id="import">
    <sources pattern="data/ammosaic_*.fits"/>
    <fitsProdGrammar qnd="True">
      <rowfilter procDef="//products#define">
        <bind key="table">"\schema.main"</bind>
      </rowfilter>
    </fitsProdGrammar>
    <make table="main">
      <rowmaker>
        <apply procDef="//siap#setMeta">
          <bind key="title">"{} {} tile {}{}".format(@OBJECT, @FILTER, @TILEY, @TILEX)</bind>
          <bind key="bandpassId">@FILTER</bind>
          <bind key="instrument">"{} {}".format(@TELESCOP, @INSTRUME)</bind>
          <bind key="dateObs">None</bind>
        </apply>
        <apply procDef="//siap#computePGS"/>
        <map key="object">@OBJECT</map>
        <map key="pub_did">\standardPubDID</map>
      </rowmaker>
    </make>
  </data>

  <data id="import_sources">
    <sources>data/sources.fits</sources>
    <fitsTableGrammar/>
    <make table="sources">
      <rowmaker idmaps="*"/>
    </make>
  </data>

  <service id="i" allowed="form,siap.xml">
    <meta name="shortName">ammosaic siap</meta>
    <meta name="sia.type">Pointed</meta>
    <meta name="testQuery.pos.ra">150.10</meta>
    <meta name="testQuery.pos.dec">2.20</meta>
    <meta name="testQuery.size.ra">0.01</meta>
    <meta name="testQuery.size.dec">0.01</meta>
    <publish render="siap.xml" sets="local"/>
    <dbCore queriedTable="main">
      <condDesc original="//siap#protoInput"/>
      <condDesc original="//siap#humanInput"/>
    </dbCore>
  </service>

  <service id="dl" allowed="dlget,dlmeta">
    <meta name="title">ammosaic datalink and SODA</meta>
    <datalinkCore>
      <descriptorGenerator procDef="//soda#fits_genDesc">
        <bind key="accrefPrefix">"ammosaic/"</bind>
      </descriptorGenerator>
      <FEED source="//soda#fits_standardDLFuncs"/>
    </datalinkCore>
  </service>
</resource>
